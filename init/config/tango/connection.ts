// Where the Tango database is: a URL from the config file, else the variables the Tango database
// server (DataBaseds) itself reads — MYSQL_HOST ("host" or "host:port"), MYSQL_USER, MYSQL_PASSWORD,
// MYSQL_DATABASE — so a site that runs DataBaseds with them points the init at the same database.
// As in the MySQL/MariaDB client library, the host "localhost" (the default) means the Unix socket
// (MYSQL_UNIX_PORT, else /run/mysqld/mysqld.sock) and the user defaults to the login name.

import os from "node:os";

export interface TangoConnection {
  host: string | null;
  port: number;
  socketPath: string | null;
  user: string;
  password: string;
  database: string;
  /** For messages and status: the URL without the password. */
  display: string;
}

export const DEFAULT_SOCKET = "/run/mysqld/mysqld.sock";
const DEFAULT_PORT = 3306;

function loginName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return "root";
  }
}

function describe(connection: Omit<TangoConnection, "display">): string {
  const where = connection.socketPath !== null ? `localhost?socket=${connection.socketPath}` : `${connection.host}:${connection.port}`;
  return `mysql://${connection.user}@${where}/${connection.database}`;
}

/** "host", "host:port", "[::1]:port" → host and port. */
function splitHostPort(text: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(text.trim());
  if (!match) return { host: text.trim(), port: DEFAULT_PORT };
  return { host: match[1].replace(/^\[(.*)\]$/, "$1"), port: match[2] ? Number(match[2]) : DEFAULT_PORT };
}

/** The connection from a URL (when the file gives one) or from the environment. */
export function resolveConnection(url: string | null, env: Readonly<Record<string, string | undefined>>): TangoConnection {
  let host: string;
  let port: number;
  let user: string;
  let password: string;
  let database: string;
  let socket: string | null = null;
  if (url !== null) {
    const parsed = new URL(url);
    host = decodeURIComponent(parsed.hostname.replace(/^\[(.*)\]$/, "$1")) || "localhost";
    port = parsed.port ? Number(parsed.port) : DEFAULT_PORT;
    user = decodeURIComponent(parsed.username) || loginName();
    password = decodeURIComponent(parsed.password);
    database = decodeURIComponent(parsed.pathname.replace(/^\//, "")) || "tango";
    socket = parsed.searchParams.get("socket");
  } else {
    ({ host, port } = splitHostPort(env.MYSQL_HOST || "localhost"));
    user = env.MYSQL_USER || loginName();
    password = env.MYSQL_PASSWORD ?? "";
    database = env.MYSQL_DATABASE || "tango";
  }
  const viaSocket = socket !== null || host === "localhost";
  const connection = {
    host: viaSocket ? null : host,
    port,
    socketPath: viaSocket ? (socket ?? env.MYSQL_UNIX_PORT ?? DEFAULT_SOCKET) : null,
    user,
    password,
    database,
  };
  return { ...connection, display: describe(connection) };
}
