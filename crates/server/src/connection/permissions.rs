//! Permission checks for the connection's user in its vhost, as RabbitMQ words them.

use crate::connection::Connection;
use crate::error::ChannelError;

impl Connection {
    fn refused(&self, access: &str, kind: &str, name: &str) -> ChannelError {
        ChannelError::access_refused(format!(
            "{access} access to {kind} '{name}' in vhost '{}' refused for user '{}'",
            self.vhost.name(),
            self.user.name()
        ))
    }

    /// Configure permission (declare, delete) on a resource, or 403.
    pub(crate) fn check_configure(&self, kind: &str, name: &str) -> Result<(), ChannelError> {
        if self.permissions.can_configure(name) {
            Ok(())
        } else {
            Err(self.refused("configure", kind, name))
        }
    }

    /// Write permission (publish, bind a queue) on a resource, or 403.
    pub(crate) fn check_write(&self, kind: &str, name: &str) -> Result<(), ChannelError> {
        if self.permissions.can_write(name) {
            Ok(())
        } else {
            Err(self.refused("write", kind, name))
        }
    }

    /// Read permission (consume, get, purge, bind from an exchange) on a resource, or 403.
    pub(crate) fn check_read(&self, kind: &str, name: &str) -> Result<(), ChannelError> {
        let name = if name.is_empty() { "amq.default" } else { name };
        if self.permissions.can_read(name) {
            Ok(())
        } else {
            Err(self.refused("read", kind, name))
        }
    }
}
