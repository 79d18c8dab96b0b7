//! The tx class (90): transactions over publishes and acks.

methods! {
    /// Puts the channel in transactional mode.
    TxSelect = (90, 10, "tx.select") {}
    /// Confirms tx.select.
    TxSelectOk = (90, 11, "tx.select-ok") {}
    /// Commits the current transaction.
    TxCommit = (90, 20, "tx.commit") {}
    /// Confirms a commit.
    TxCommitOk = (90, 21, "tx.commit-ok") {}
    /// Abandons the current transaction.
    TxRollback = (90, 30, "tx.rollback") {}
    /// Confirms a rollback.
    TxRollbackOk = (90, 31, "tx.rollback-ok") {}
}
