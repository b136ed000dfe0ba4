// The `tango` source as the loader hands it to the supervisor: its settings, where its database is,
// whose servers it reads, and how what it read is combined with the file (compose.ts).

import os from "node:os";
import type * as z from "zod";
import type { SupervisorConfig } from "../../core/types";
import type { FieldProblem } from "../errors";
import type { ResolveDeps, ServerEntry } from "../resolve";
import { composeTango, type TangoReport } from "./compose";
import { resolveConnection, type TangoConnection } from "./connection";
import { readTangoHost, type TangoSnapshot } from "./read";
import { tangoSourceSettings, type tangoSectionSchema, type TangoSourceSettings } from "./schema";

export interface TangoSource {
  settings: TangoSourceSettings;
  /** The database: sources.tango.tangoHost, else TANGO_HOST of settings.env, else of the init's environment. */
  connection: TangoConnection;
  /** Whose servers: the file's `host`, else this machine's short host name. */
  host: string;
  /** One read of the database (rejects with a TangoReadError). */
  read(): Promise<TangoSnapshot>;
  /** The file's configuration with what a read found. */
  compose(snapshot: TangoSnapshot): { config: SupervisorConfig; report: TangoReport };
}

export interface SourceContext {
  rawSettings: unknown;
  /** settings.env of the file (null unsets a variable). */
  settingsEnv: Readonly<Record<string, string | null>>;
  entries: readonly ServerEntry[];
  fileConfig: SupervisorConfig;
  fileName: string;
  deps: ResolveDeps;
}

/** This machine's host name up to the first dot, as the Starter names itself. */
function shortHostName(): string {
  return os.hostname().split(".")[0];
}

/**
 * The source of a valid `sources.tango` section; problems of names it refers to, or a missing
 * TANGO_HOST, go to `problems` (the source is then null).
 */
export function tangoSourceOf(section: z.output<typeof tangoSectionSchema>, context: SourceContext, problems: FieldProblem[]): TangoSource | null {
  const settings = tangoSourceSettings(section);
  const fileNames = new Set(context.entries.flatMap((entry) => (entry.rawName === undefined ? [] : [entry.rawName])));
  for (const name of settings.waitFor) {
    if (!fileNames.has(name)) {
      problems.push({
        path: ["sources", "tango", "waitFor"],
        message: `unknown server ${JSON.stringify(name)}: waitFor names servers of the file's servers list`,
      });
    }
  }
  const resolved = resolveConnection(settings.tangoHost, context.settingsEnv, context.deps.env);
  if ("problem" in resolved) {
    problems.push({ path: settings.tangoHost !== null ? ["sources", "tango", "tangoHost"] : ["sources", "tango"], message: resolved.problem });
    return null;
  }
  const { connection } = resolved;
  const host = settings.host ?? shortHostName();
  return {
    settings,
    connection,
    host,
    read: () => readTangoHost(connection, host, settings.connectTimeoutMs),
    compose: (snapshot) =>
      composeTango(
        {
          source: settings,
          tangoHost: connection.tangoHost,
          rawSettings: context.rawSettings,
          entries: context.entries,
          fileConfig: context.fileConfig,
          fileName: context.fileName,
          deps: context.deps,
        },
        snapshot,
      ),
  };
}
