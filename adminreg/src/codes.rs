//! `tarsErrCode` (`AdminReg.tars`), the codes AdminReg methods return.

/// Success.
pub const SUCCESS: i32 = 0;
/// The node has no active `t_node_info` row.
pub const NODE_NOT_REGISTRY: i32 = 1001;
/// The node did not answer in time.
pub const CALL_NODE_TIMEOUT: i32 = 1002;
/// The server has no `t_server_conf` row.
pub const LOAD_SERVICE_DESC: i32 = 1003;
/// The server is in the wrong state for the command.
pub const SERVICE_STATE: i32 = 1004;
/// A bad parameter.
pub const PARAMETER: i32 = 1007;
/// Another failure (also: the operation is not supported by this implementation).
pub const OTHER: i32 = 1008;
/// The command may not run (stopping AdminReg itself from a task).
pub const CAN_NOT_EXECUTE: i32 = 1011;
/// The node has no connection to this instance and no `NodeObj`.
pub const NODE_NO_CONNECTION: i32 = 1012;
/// Unknown failure (the database, a call error).
pub const UNKNOWN: i32 = -1;

/// What the not-supported operations answer (patch, docker, auth, plugins), with
/// [`NOT_SUPPORTED_TEXT`].
pub const NOT_SUPPORTED: i32 = OTHER;
/// The text of [`NOT_SUPPORTED`].
pub const NOT_SUPPORTED_TEXT: &str = "not supported by this tarsAdminRegistry (tars-rs)";

/// The code's IDL name, for notices and logs.
pub fn name(code: i32) -> &'static str {
    match code {
        SUCCESS => "EM_TARS_SUCCESS",
        NODE_NOT_REGISTRY => "EM_TARS_NODE_NOT_REGISTRY_ERR",
        CALL_NODE_TIMEOUT => "EM_TARS_CALL_NODE_TIMEOUT_ERR",
        LOAD_SERVICE_DESC => "EM_TARS_LOAD_SERVICE_DESC_ERR",
        SERVICE_STATE => "EM_TARS_SERVICE_STATE_ERR",
        1005 => "EM_TARS_REQ_ALREADY_ERR",
        1006 => "EM_TARS_INVALID_IP_ERR",
        PARAMETER => "EM_TARS_PARAMETER_ERR",
        OTHER => "EM_TARS_OTHER_ERR",
        1009 => "EM_TARS_GET_PATCH_FILE_ERR",
        1010 => "EM_TARS_PREPARE_ERR",
        CAN_NOT_EXECUTE => "EM_TARS_CAN_NOT_EXECUTE",
        NODE_NO_CONNECTION => "EM_TARS_NODE_NO_CONNECTION",
        _ => "EM_TARS_UNKNOWN_ERR",
    }
}
