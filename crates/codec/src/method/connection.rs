//! The connection class (10): handshake, tuning, close, and RabbitMQ's blocked and
//! update-secret extensions.

methods! {
    /// Server → client: starts the handshake, offering SASL mechanisms.
    ConnectionStart = (10, 10, "connection.start") {
        /// Protocol major version (0).
        version_major: octet,
        /// Protocol minor version (9).
        version_minor: octet,
        /// Product, version, platform, capabilities.
        server_properties: table,
        /// Space-separated SASL mechanisms.
        mechanisms: longstr,
        /// Space-separated locales.
        locales: longstr,
    }
    /// Client → server: picks a mechanism and answers it.
    ConnectionStartOk = (10, 11, "connection.start-ok") {
        /// Product, version, capabilities, connection name.
        client_properties: table,
        /// The chosen SASL mechanism.
        mechanism: shortstr,
        /// The SASL response.
        response: longstr,
        /// The chosen locale.
        locale: shortstr,
    }
    /// Server → client: a further SASL challenge.
    ConnectionSecure = (10, 20, "connection.secure") {
        /// The challenge.
        challenge: longstr,
    }
    /// Client → server: the answer to a challenge.
    ConnectionSecureOk = (10, 21, "connection.secure-ok") {
        /// The response.
        response: longstr,
    }
    /// Server → client: proposes limits.
    ConnectionTune = (10, 30, "connection.tune") {
        /// Highest channel number the server allows (0 = no limit).
        channel_max: short,
        /// Largest frame the server accepts (0 = no limit).
        frame_max: long,
        /// Heartbeat interval the server wants, in seconds (0 = none).
        heartbeat: short,
    }
    /// Client → server: the limits it settled on.
    ConnectionTuneOk = (10, 31, "connection.tune-ok") {
        /// Negotiated highest channel number.
        channel_max: short,
        /// Negotiated largest frame.
        frame_max: long,
        /// Negotiated heartbeat interval in seconds.
        heartbeat: short,
    }
    /// Client → server: opens a virtual host.
    ConnectionOpen = (10, 40, "connection.open") {
        /// The virtual host name.
        virtual_host: shortstr,
        /// Reserved ("capabilities"), empty.
        reserved_1: shortstr,
        /// Reserved ("insist"), false.
        reserved_2: bit,
    }
    /// Server → client: the vhost is open.
    ConnectionOpenOk = (10, 41, "connection.open-ok") {
        /// Reserved ("known-hosts"), empty.
        reserved_1: shortstr,
    }
    /// Either peer: closes the connection, with the reason.
    ConnectionClose = (10, 50, "connection.close") {
        /// Reply code.
        reply_code: short,
        /// Reply text.
        reply_text: shortstr,
        /// Class of the method that failed, or 0.
        class_id: short,
        /// Method that failed, or 0.
        method_id: short,
    }
    /// Either peer: confirms a close.
    ConnectionCloseOk = (10, 51, "connection.close-ok") {}
    /// Server → client (RabbitMQ): publishing is blocked, e.g. by a memory alarm.
    ConnectionBlocked = (10, 60, "connection.blocked") {
        /// Why.
        reason: shortstr,
    }
    /// Server → client (RabbitMQ): publishing may resume.
    ConnectionUnblocked = (10, 61, "connection.unblocked") {}
    /// Client → server (RabbitMQ): replaces the credentials (e.g. a refreshed token).
    ConnectionUpdateSecret = (10, 70, "connection.update-secret") {
        /// The new secret.
        new_secret: longstr,
        /// Why.
        reason: shortstr,
    }
    /// Server → client (RabbitMQ): the secret was accepted.
    ConnectionUpdateSecretOk = (10, 71, "connection.update-secret-ok") {}
}
