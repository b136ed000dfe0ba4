// Where the Tango database is: what every host of a Tango control system knows, TANGO_HOST — one
// database server (DataBaseds) "host:port", or several separated by commas (redundant databases,
// tried in turn). It comes from `sources.tango.tangoHost` in the file, else TANGO_HOST of the file's
// settings.env, else of the init's environment: the same value the servers it starts inherit. The
// source talks to DataBaseds over GIOP, like the Starter and every Tango client; it needs no
// credentials of the database behind it.

import { formatTangoHost, parseTangoHost, type TangoHostEntry } from "../../giop/tango";

export interface TangoConnection {
  /** The TANGO_HOST value read: "db:10000" or "db1:10000,db2:10000". */
  tangoHost: string;
  entries: TangoHostEntry[];
  /** Where the value came from, for messages. */
  from: "sources.tango.tangoHost" | "settings.env" | "the init's environment";
  /** For messages and status: tango://db1:10000,db2:10000. */
  display: string;
}

/** The connection, or why there is none (a problem of the file, placed at `sources.tango`). */
export function resolveConnection(
  fromFile: string | null,
  settingsEnv: Readonly<Record<string, string | null>>,
  env: Readonly<Record<string, string | undefined>>,
): { connection: TangoConnection } | { problem: string } {
  let text: string;
  let from: TangoConnection["from"];
  if (fromFile !== null) {
    text = fromFile;
    from = "sources.tango.tangoHost";
  } else if (Object.hasOwn(settingsEnv, "TANGO_HOST")) {
    if (settingsEnv.TANGO_HOST === null) return { problem: "settings.env unsets TANGO_HOST: the tango source needs it (or sources.tango.tangoHost)" };
    text = settingsEnv.TANGO_HOST;
    from = "settings.env";
  } else if (env.TANGO_HOST) {
    text = env.TANGO_HOST;
    from = "the init's environment";
  } else {
    return {
      problem:
        "no TANGO_HOST: the tango source reads the database through DataBaseds at TANGO_HOST; set it in the init's environment or settings.env, or give sources.tango.tangoHost",
    };
  }
  try {
    const entries = parseTangoHost(text);
    return { connection: { tangoHost: formatTangoHost(entries), entries, from, display: `tango://${formatTangoHost(entries)}` } };
  } catch (err) {
    return { problem: `${(err as Error).message} (TANGO_HOST from ${from})` };
  }
}
