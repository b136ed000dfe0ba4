// Loads the YAML configuration file: parse with positions, validate each section with the schema,
// resolve, and report every problem found as `file:line:column: field.path: message`, all at once.

import { accessSync, constants as fsConstants, readFileSync, statSync } from "node:fs";
import { isAlias, isMap, isNode, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type Pair, type ScalarTag } from "yaml";
import type * as z from "zod";
import type { SupervisorConfig } from "../core/types";
import { ConfigError, formatFieldPath, type ConfigProblem, type FieldPath, type FieldProblem } from "./errors";
import { resolveConfig, type ResolveDeps, type ServerEntry } from "./resolve";
import {
  configFileOutline,
  findStarterConflicts,
  issueMessage,
  knownKeysAt,
  levelCeiling,
  makeServerSchema,
  settingsSchema,
  type SettingsInput,
} from "./schema";
import { closestWord } from "./values";
import { tangoSourceOf, type TangoSource } from "./tango/source";
import { sourcesSchema } from "./tango/schema";
import { addStarterDevice } from "./starter-device";

export { ConfigError, type ConfigProblem } from "./errors";

/** Everything the loader reads from the system; each can be replaced (tests replace them all). */
export interface ConfigDeps extends ResolveDeps {
  readFile(path: string): string;
}

function executableStatus(path: string): "executable" | "not-executable" | "missing" {
  try {
    if (!statSync(path).isFile()) return "not-executable";
    accessSync(path, fsConstants.X_OK);
    return "executable";
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ENOENT" || (error as NodeJS.ErrnoException).code === "ENOTDIR" ? "missing" : "not-executable";
  }
}

const systemDeps: ConfigDeps = {
  readFile: (path) => readFileSync(path, "utf8"),
  executableStatus,
  readPasswd: () => readFileSync("/etc/passwd", "utf8"),
  readGroup: () => readFileSync("/etc/group", "utf8"),
  env: process.env,
};

/** Reads and resolves a configuration file; throws ConfigError listing every problem. */
export function loadConfig(path: string, deps: Partial<ConfigDeps> = {}): SupervisorConfig {
  return loadConfigWithSources(path, deps).config;
}

/** A file's configuration, and its `sources:` (null when it has none) to compose with what they read. */
export interface ConfigWithSources {
  /** The file alone: what runs while a source has not answered. */
  config: SupervisorConfig;
  tango: TangoSource | null;
  /**
   * Places a problem of a server's socket, found when the init binds it (an address in use, a missing
   * directory), at the socket's `listen` in the file, as any config problem is placed. Absent for a
   * config not read from a file.
   */
  placeSocket?: SocketPlacer;
}

export type SocketPlacer = (server: string, socket: number, message: string) => ConfigProblem;

/** loadConfig, with the file's sources. */
export function loadConfigWithSources(path: string, deps: Partial<ConfigDeps> = {}): ConfigWithSources {
  const allDeps = { ...systemDeps, ...deps };
  let text: string;
  try {
    text = allDeps.readFile(path);
  } catch (error) {
    throw new ConfigError([{ file: path, line: 1, column: 1, path: "", message: `cannot read the file: ${(error as Error).message}` }]);
  }
  return parseConfigWithSources(text, path, allDeps);
}

/**
 * YAML 1.2 reads an unquoted 022 as the decimal 22, which for a umask is a silent mistake. As YAML 1.1
 * did, an unquoted integer with a leading 0 and only octal digits is octal here (`umask: 022` is 0o22).
 */
const leadingZeroOctal: ScalarTag = {
  tag: "tag:yaml.org,2002:int",
  default: true,
  test: /^0[0-7]+$/,
  identify: (value) => typeof value === "number",
  resolve: (source) => parseInt(source, 8),
};

/** Top-level keys starting with this are free for YAML anchors and are not validated. */
const extensionPrefix = "x-";

/** Parses configuration text; `fileName` is used in messages and as the config's source. */
export function parseConfig(text: string, fileName: string, deps: Partial<ConfigDeps> = {}): SupervisorConfig {
  return parseConfigWithSources(text, fileName, deps).config;
}

/** parseConfig, with the file's sources. */
export function parseConfigWithSources(text: string, fileName: string, deps: Partial<ConfigDeps> = {}): ConfigWithSources {
  const allDeps = { ...systemDeps, ...deps };
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    merge: true,
    prettyErrors: false,
    customTags: (tags) => [leadingZeroOctal, ...tags],
  });
  const place = (offset: number, path: string, message: string): ConfigProblem => {
    const { line, col } = lineCounter.linePos(offset);
    return { file: fileName, line: Math.max(line, 1), column: Math.max(col, 1), path, message };
  };
  if (doc.errors.length > 0) throw new ConfigError(doc.errors.map((error) => place(error.pos[0], "", error.message)));

  const problems: FieldProblem[] = [];
  let raw: unknown;
  try {
    raw = doc.toJS() ?? {};
  } catch (error) {
    // The yaml library reports a few problems (an alias to an unknown anchor, a merge of a non-mapping)
    // only here, without a position.
    throw new ConfigError([place(0, "", (error as Error).message)]);
  }
  const isMapping = typeof raw === "object" && raw !== null && !Array.isArray(raw);
  const top = isMapping ? Object.fromEntries(Object.entries(raw as object).filter(([key]) => !key.startsWith(extensionPrefix))) : raw;

  // The outline checks the top level only; the sections are validated even when it has problems.
  const outline = configFileOutline.safeParse(top, { error: issueMessage, reportInput: true });
  if (!outline.success) problems.push(...problemsFromIssues(outline.error.issues, { schema: configFileOutline, prefix: [] }));
  const sections: { settings?: unknown; servers?: unknown; sources?: unknown } = isMapping ? (top as object) : {};

  const rawSettings = sections.settings ?? {};
  problems.push(...findStarterConflicts(rawSettings));
  const parsedSettings = settingsSchema.safeParse(rawSettings, { error: issueMessage, reportInput: true });
  const settings: SettingsInput | undefined = parsedSettings.success ? parsedSettings.data : undefined;
  if (!parsedSettings.success) problems.push(...problemsFromIssues(parsedSettings.error.issues, { schema: settingsSchema, prefix: ["settings"] }));

  const maxLevel = settings?.maxLevel;
  const serverSchema = makeServerSchema(maxLevel ? { max: maxLevel.value, boundKey: maxLevel.key } : { max: levelCeiling });
  const entries: ServerEntry[] = (Array.isArray(sections.servers) ? sections.servers : []).map((rawServer: unknown, index) => {
    const parsed = serverSchema.safeParse(rawServer, { error: issueMessage, reportInput: true });
    if (!parsed.success) problems.push(...problemsFromIssues(parsed.error.issues, { schema: serverSchema, prefix: ["servers", index] }));
    const rawName = (rawServer as { name?: unknown } | null)?.name;
    return { index, rawName: typeof rawName === "string" ? rawName : undefined, input: parsed.success ? parsed.data : undefined };
  });

  const parsedSources = sourcesSchema.safeParse(sections.sources ?? {}, { error: issueMessage, reportInput: true });
  if (!parsedSources.success) problems.push(...problemsFromIssues(parsedSources.error.issues, { schema: sourcesSchema, prefix: ["sources"] }));

  const { config, problems: resolveProblems } = resolveConfig(settings, entries, fileName, allDeps);
  problems.push(...resolveProblems);
  const tangoSection = parsedSources.success ? parsedSources.data.tango : undefined;
  const tango = tangoSection
    ? tangoSourceOf(
        tangoSection,
        { rawSettings: sections.settings, settingsEnv: settings?.env ?? {}, entries, fileConfig: config, fileName, deps: allDeps },
        problems,
      )
    : null;
  if (tango && tangoSection?.device) {
    // The source composes with `config` itself: for it, the device is one of the file's servers.
    addStarterDevice(
      config,
      { host: tango.host, tangoHost: tango.connection.tangoHost, waitFor: tango.settings.waitFor, settings, fileName, deps: allDeps },
      problems,
    );
  }
  if (problems.length > 0) {
    throw new ConfigError(problems.map((problem) => place(offsetOf(doc, problem.path), formatFieldPath(problem.path), problem.message)));
  }
  const placeSocket: SocketPlacer = (server, socket, message) => {
    const index = entries.find((entry) => entry.rawName === server)?.index;
    const path: FieldPath = index === undefined ? [] : ["servers", index, "sockets", socket];
    return place(offsetOf(doc, path), formatFieldPath(path), message);
  };
  return { config, tango, placeSocket };
}

/** A section of the file validated on its own: its schema, and the path of the section in the file. */
interface Section {
  schema: z.core.$ZodType;
  prefix: FieldPath;
}

/**
 * Zod issues of one section as field problems, with unions narrowed to the branch the value was meant
 * for. `within` is the path inside the section of the union being narrowed.
 */
function problemsFromIssues(issues: readonly z.core.$ZodIssue[], section: Section, within: FieldPath = []): FieldProblem[] {
  return issues.flatMap((issue): FieldProblem[] => {
    const schemaPath = [...within, ...(issue.path as (string | number)[])];
    const path = [...section.prefix, ...schemaPath];
    switch (issue.code) {
      case "invalid_union": {
        // A branch that rejected the value as a whole (its type) was not what the user meant; when
        // exactly one branch got further, its issues say what is wrong. Otherwise the union's own message does.
        const rejectsWhole = (inner: z.core.$ZodIssue) => inner.path.length === 0 && (inner.code === "invalid_type" || inner.code === "invalid_value");
        const meant = issue.errors.filter((branch) => !branch.every(rejectsWhole));
        return meant.length === 1 ? problemsFromIssues(meant[0], section, schemaPath) : [{ path, message: issue.message }];
      }
      case "invalid_key":
        // A record's key failed its schema: the key schema's own issues say how.
        return problemsFromIssues(issue.issues, section, schemaPath);
      case "unrecognized_keys": {
        const known = knownKeysAt(section.schema, schemaPath);
        return issue.keys.map((key) => ({ path: [...path, key], message: unknownKeyMessage(key, known) }));
      }
      default:
        return [{ path, message: issue.message }];
    }
  });
}

/** Starter properties that have no meaning for starter-init. */
const unusedStarterProperties = new Set(["WaitForDriverStartup", "MovingMaxDuration"]);

function unknownKeyMessage(key: string, known: readonly string[]): string {
  if (unusedStarterProperties.has(key)) return `unknown key "${key}": a Starter property with no equivalent in starter-init`;
  const suggestion = closestWord(key, known);
  return suggestion ? `unknown key "${key}"; did you mean "${suggestion}"?` : `unknown key "${key}"`;
}

/**
 * Where in the text a problem is: where its field starts (the key of a mapping entry, or the item of a
 * list), or, when the path leads to something the file does not have (a missing key), where the deepest
 * existing part of the path starts. Keys brought in by a YAML merge (`<<: *anchor`) are found in the anchor.
 */
function offsetOf(doc: Document, path: FieldPath): number {
  let node: unknown = doc.contents;
  let start: Node | null | undefined = doc.contents;
  for (const step of path) {
    const entry = childOf(doc, node, step);
    if (!entry) break;
    start = entry.start;
    node = entry.value;
  }
  return start?.range?.[0] ?? 0;
}

/** The entry `step` of a mapping or list node: where it starts, and its value. */
function childOf(doc: Document, node: unknown, step: string | number): { start: Node; value: unknown } | undefined {
  const resolved = isAlias(node) ? node.resolve(doc) : node;
  if (isSeq(resolved)) {
    const item = typeof step === "number" ? resolved.items[step] : undefined;
    return isNode(item) ? { start: item, value: item } : undefined;
  }
  if (!isMap(resolved)) return undefined;
  const keyOf = (pair: Pair) => (isScalar(pair.key) ? pair.key.value : pair.key);
  const pair = resolved.items.find((candidate) => keyOf(candidate) === step);
  if (pair && isNode(pair.key)) return { start: pair.key, value: pair.value };
  // With `merge: true` the yaml library gives a merge key the value Symbol("<<").
  const isMergeKey = (key: unknown) => key === "<<" || (typeof key === "symbol" && key.description === "<<");
  for (const merge of resolved.items.filter((candidate) => isMergeKey(keyOf(candidate)))) {
    const merged = isSeq(merge.value) ? merge.value.items : [merge.value];
    for (const source of merged) {
      const entry = childOf(doc, source, step);
      if (entry) return entry;
    }
  }
  return undefined;
}
