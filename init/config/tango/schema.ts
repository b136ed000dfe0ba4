// The `sources:` section of the configuration file: where servers come from besides the file's own
// `servers:` list. One source exists: `tango`, the Tango database (what the Tango Starter reads).
//
//   sources:
//     tango:
//       tangoHost: db1:10000,db2:10000   # else TANGO_HOST of settings.env, else of the init's
//                                        # environment: the database server(s), DataBaseds
//       host: myhost          # whose servers: default this machine's short host name
//       levelOffset: 2        # a database level L becomes L + 2 (room for the file's own levels)
//       waitFor: [DataBaseds/2]   # read the database once these servers of the file are ready
//       waitForTimeout: 2m    # …or after this long at the latest (the read then retries as usual)
//       connectTimeout: 5s
//       retry: {initialDelay: 1s, maxDelay: 30s}   # while the database does not answer
//       servers:              # merged over the servers read from the database (names or globs)
//         - name: TangoTest/*
//           env: {MY_VAR: x}
//       device: true          # run this host's Tango Starter device (config/starter-device.ts)
//
// Every mapping is strict, like the rest of the file.

import * as z from "zod";
import { levelCeiling, makeServerSchema, type ServerInput } from "../schema";
import { starterDeviceSchema } from "../starter-device";
import { durationExpectation, parseDuration } from "../values";
import { parseTangoHost } from "../../giop/tango";

function got(input: unknown): string {
  return input === undefined ? "but it is missing" : `got ${JSON.stringify(input)}`;
}

const duration = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const parsed = parseDuration(value);
  if (parsed.ok) return parsed.value;
  ctx.addIssue({ code: "custom", message: `expected ${durationExpectation}, ${got(value)}`, input: value });
  return z.NEVER;
});

const tangoHostExpectation = 'a TANGO_HOST "host:port", or several "host1:port1,host2:port2"';
const tangoHost = z.string({ error: (issue) => `expected ${tangoHostExpectation}, ${got(issue.input)}` }).refine(
  (text) => {
    try {
      parseTangoHost(text);
      return true;
    } catch {
      return false;
    }
  },
  { error: (issue) => `expected ${tangoHostExpectation}, ${got(issue.input)}` },
);

/** The MySQL path is gone: a file that still names a MySQL URL is told what replaced it. */
const removedUrl = z.unknown().superRefine((value, ctx) => {
  ctx.addIssue({
    code: "custom",
    message:
      "the tango source no longer reads MySQL: it asks the database server (DataBaseds) at TANGO_HOST, as the Starter does; " +
      "remove url and set TANGO_HOST (settings.env or the init's environment) or sources.tango.tangoHost",
    input: value,
  });
});

const names = z.union([z.string().transform((name) => [name]), z.array(z.string())], {
  error: (issue) => `expected a server name or a list of names, ${got(issue.input)}`,
});

/** Per-server settings merged over the servers read from the database; `name` may be a glob (`TangoTest/*`). */
export const overrideSchema = makeServerSchema({ max: levelCeiling });

export const tangoSectionSchema = z.strictObject({
  tangoHost: tangoHost.optional(),
  url: removedUrl.optional(),
  host: z
    .string({ error: (issue) => `expected a host name, ${got(issue.input)}` })
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { error: (issue) => `expected a host name, ${got(issue.input)}` })
    .optional(),
  levelOffset: z
    .int({ error: (issue) => `expected an integer between 0 and 100, ${got(issue.input)}` })
    .min(0, { error: (issue) => `expected an integer between 0 and 100, ${got(issue.input)}` })
    .max(100, { error: (issue) => `expected an integer between 0 and 100, ${got(issue.input)}` })
    .optional(),
  waitFor: names.optional(),
  waitForTimeout: duration.optional(),
  connectTimeout: duration.optional(),
  retry: z.strictObject({ initialDelay: duration.optional(), maxDelay: duration.optional() }).optional(),
  servers: z.array(overrideSchema).optional(),
  /** The Tango device of class Starter for this host, run by the init (config/starter-device.ts). */
  device: starterDeviceSchema.optional(),
});

export const sourcesSchema = z.strictObject({ tango: tangoSectionSchema.optional() });

/** The `sources.tango` section with its defaults applied. */
export interface TangoSourceSettings {
  /** TANGO_HOST from the file; null: from settings.env or the init's environment. */
  tangoHost: string | null;
  /** The host whose servers are read; null: this machine's short host name. */
  host: string | null;
  levelOffset: number;
  waitFor: string[];
  /** The wait for waitFor ends after this long even when they are not ready: no wait without a deadline. */
  waitForTimeoutMs: number;
  connectTimeoutMs: number;
  retry: { initialDelayMs: number; maxDelayMs: number };
  overrides: ServerInput[];
}

const tangoDefaults = { waitForTimeoutMs: 120_000, connectTimeoutMs: 5000, retry: { initialDelayMs: 1000, maxDelayMs: 30_000 } };

export function tangoSourceSettings(section: z.output<typeof tangoSectionSchema>): TangoSourceSettings {
  return {
    tangoHost: section.tangoHost ?? null,
    host: section.host ?? null,
    levelOffset: section.levelOffset ?? 0,
    waitFor: section.waitFor ?? [],
    waitForTimeoutMs: section.waitForTimeout ?? tangoDefaults.waitForTimeoutMs,
    connectTimeoutMs: section.connectTimeout ?? tangoDefaults.connectTimeoutMs,
    retry: {
      initialDelayMs: section.retry?.initialDelay ?? tangoDefaults.retry.initialDelayMs,
      maxDelayMs: Math.max(section.retry?.maxDelay ?? tangoDefaults.retry.maxDelayMs, section.retry?.initialDelay ?? 0),
    },
    overrides: section.servers ?? [],
  };
}
