// Exit codes of every client command (documented in README.md, "Client exit codes"). One meaning each, the same
// for every command, so scripts can tell "the server failed" from "the init is not there".

export const EXIT = {
  /** Done: the servers got where they were asked to go; `ready`: every server that should run is ready. */
  OK: 0,
  /** The request was carried out but failed: a server did not become ready, did not stop, was refused (pinned, shutting down), `ready` said not ready, poweroff outside a VM. */
  FAILED: 1,
  /** Bad command line. */
  USAGE: 2,
  /** No server matches a name or pattern. */
  NOT_FOUND: 3,
  /** The outcome did not come within --timeout (the request itself was taken). */
  TIMEOUT: 4,
  /** No init answers on the socket (no socket, connection refused, closed without an answer). */
  UNREACHABLE: 5,
  /** The init refused this user (only root, or STARTER_CONTROL_GROUP), or the socket's mode did. */
  DENIED: 6,
  /** The init and the client do not understand each other (protocol version, malformed answer). */
  PROTOCOL: 7,
  /** `reload`/`plan`: the config file does not load (EX_CONFIG). */
  CONFIG: 78,
} as const;
