// The errors of the GIOP client, typed the way CORBA types them, so a caller can tell a peer that is
// not there (TRANSIENT) from one that does not answer in time (TIMEOUT), a broken stream
// (COMM_FAILURE, MARSHAL) and an object the server does not know (OBJECT_NOT_EXIST).

/** CORBA system exceptions the client raises or decodes by name; any other decoded one keeps its name. */
export type SystemExceptionName =
  | "TRANSIENT" // no connection (refused, unreachable, connect timeout) or the server closed it before answering
  | "COMM_FAILURE" // the connection broke, or the peer spoke something that is not GIOP
  | "TIMEOUT" // no reply within the reply timeout
  | "MARSHAL" // a message that does not decode (truncated, a length beyond the bounds)
  | "OBJECT_NOT_EXIST"
  | "BAD_OPERATION"
  | "NO_IMPLEMENT"
  | "BAD_PARAM"
  | "INV_OBJREF" // an IOR without an IIOP profile, or a TANGO_HOST that is not host:port
  | "IMP_LIMIT" // too many LOCATION_FORWARDs in a row
  | "UNKNOWN";

export type CompletionStatus = "yes" | "no" | "maybe";

/** A CORBA system exception: raised here (connection, timeout, decoding) or answered by the server. */
export class SystemException extends Error {
  /** The short name (TRANSIENT, OBJECT_NOT_EXIST…), also as `code` for status lines. */
  readonly code: string;

  constructor(
    readonly exception: SystemExceptionName | (string & {}),
    message: string,
    readonly details: {
      minor?: number;
      completed?: CompletionStatus;
      /** Whether the server sent it (false: the client raised it). */
      remote?: boolean;
      /** The socket error behind it (ECONNREFUSED, EHOSTUNREACH…). */
      errno?: string;
    } = {},
  ) {
    super(message);
    this.name = "SystemException";
    this.code = exception;
  }
}

/** One entry of a Tango error stack (Tango::DevError). */
export interface DevError {
  reason: string;
  severity: "WARN" | "ERR" | "PANIC" | number;
  desc: string;
  origin: string;
}

/** The user exception Tango::DevFailed: the device answered with an error stack. */
export class DevFailed extends Error {
  /** The first reason (DB_DeviceNotDefined, API_CommandNotFound…), for status lines. */
  readonly code: string;

  constructor(readonly errors: DevError[]) {
    super(errors.length > 0 ? errors.map((error) => `${error.reason}: ${error.desc.trim()}`).join("; ") : "DevFailed with an empty error stack");
    this.name = "DevFailed";
    this.code = errors[0]?.reason ?? "DevFailed";
  }
}

/** A user exception other than DevFailed: only its repository id is known. */
export class UserException extends Error {
  readonly code = "USER_EXCEPTION";

  constructor(readonly repositoryId: string) {
    super(`user exception ${repositoryId}`);
    this.name = "UserException";
  }
}

export type GiopError = SystemException | DevFailed | UserException;

/** The MARSHAL exception of a message that does not decode. */
export function marshal(message: string): SystemException {
  return new SystemException("MARSHAL", message, { completed: "maybe" });
}
