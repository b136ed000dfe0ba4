// Configuration errors. Every problem found in a configuration file is reported with the file, the
// line and column in it, and the field path (`servers[2].readiness`), so an administrator can go
// straight to the spot. All problems of a file are collected and thrown together in one ConfigError.

/** A path into the configuration document: object keys and list indexes, outermost first. */
export type FieldPath = readonly (string | number)[];

/** A problem tied to a field but not yet placed in the file (the loader places it). */
export interface FieldProblem {
  path: FieldPath;
  message: string;
}

/** A problem placed in the file. */
export interface ConfigProblem {
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  /** Field path like `servers[2].level`; empty for problems of the file as a whole (YAML syntax). */
  path: string;
  /** What was expected and what was found. */
  message: string;
}

/** `servers[2].readiness` from ["servers", 2, "readiness"]. */
export function formatFieldPath(path: FieldPath): string {
  let text = "";
  for (const part of path) {
    if (typeof part === "number") text += `[${part}]`;
    else if (/^[A-Za-z_][\w-]*$/.test(part)) text += text === "" ? part : `.${part}`;
    else text += `[${JSON.stringify(part)}]`;
  }
  return text;
}

/** `etc/starter.yaml:14:5: servers[2].level: expected an integer between 0 and 5, got "high"` */
function formatProblem(problem: ConfigProblem): string {
  const where = `${problem.file}:${problem.line}:${problem.column}`;
  return problem.path === "" ? `${where}: ${problem.message}` : `${where}: ${problem.path}: ${problem.message}`;
}

/**
 * One or more problems in a configuration file. `file`, `line`, `column` and `path` are those of the
 * first problem (in file order); `problems` holds all of them, and the message lists each on its own line.
 */
export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly path: string;

  constructor(problems: readonly ConfigProblem[]) {
    if (problems.length === 0) throw new RangeError("a ConfigError needs at least one problem");
    const sorted = [...problems].sort((a, b) => a.line - b.line || a.column - b.column);
    super(sorted.map(formatProblem).join("\n"));
    this.name = "ConfigError";
    this.problems = sorted;
    const [first] = sorted;
    this.file = first.file;
    this.line = first.line;
    this.column = first.column;
    this.path = first.path;
  }
}

/** A value as it reads in a message: strings quoted, lists and mappings named. */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "an empty value";
  if (typeof value === "string") return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return String(value);
}
