// The level / dependency graph: validation (unknown names, cycles) and the start and stop order.
//
// Levels come from the Starter: level 1 starts first, and a server waits until every server of a
// lower level is done. Explicit `requires` / `after` refine that into a DAG: a server with explicit
// dependencies among the servers being started waits for those alone, even if that lets it start
// earlier than its level would. Such a server still counts, for the level barrier of the servers
// above it, at its *effective* level: the highest of its own level and its dependencies' effective
// levels. Barrier edges then always point to a strictly lower effective level and explicit edges
// never to a higher one, so the only possible cycles are cycles of explicit edges, which
// validateGraph reports. Shutdown goes the other way, with levels kept strictly (see stopRules).

import type { ServerSpec } from "./types";

/** The part of a ServerSpec the graph looks at. */
export type GraphNode = Pick<ServerSpec, "name" | "level" | "requires" | "after" | "exclusive" | "autostart" | "readyOnSockets" | "activation">;

/** What a server waits for before it starts, among a set of servers being started (the members). */
export interface StartRule {
  /** Members it requires: each must be ready (if one fails, this one is not started). */
  requires: string[];
  /** Members it is only ordered after: each must be ready or have given up. */
  after: string[];
  /** Null when it has explicit dependencies among the members; otherwise every member of a lower effective level. */
  levelBarrier: string[] | null;
  /** Required servers that are not members: they must be running already (or be starting). */
  externalRequires: string[];
}

/** Every distinct cycle of requires/after edges, each as a path that ends where it began. */
export function findCycles(nodes: readonly GraphNode[]): string[][] {
  const byName = new Map(nodes.map((node) => [node.name, node]));
  const color = new Map<string, "visiting" | "done">();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const seen = new Set<string>();

  const visit = (name: string): void => {
    color.set(name, "visiting");
    stack.push(name);
    for (const next of explicitDependencies(byName.get(name)!, byName)) {
      if (color.get(next) === "visiting") {
        const cycle = stack.slice(stack.indexOf(next));
        // The same cycle can be entered at any of its names: keep one rotation of it.
        const key = [...cycle].sort().join("\0");
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push([...cycle, next]);
        }
      } else if (!color.has(next)) {
        visit(next);
      }
    }
    stack.pop();
    color.set(name, "done");
  };
  for (const node of nodes) if (!color.has(node.name)) visit(node.name);
  return cycles;
}

/** Servers started at boot: autostart, and a level between 1 and maxLevel (level 0 = manual only). */
export function bootSet(nodes: readonly GraphNode[], maxLevel: number): Set<string> {
  return new Set(nodes.filter((n) => n.autostart && n.level >= 1 && n.level <= maxLevel).map((n) => n.name));
}

/** The highest of a member's own level and its member dependencies' effective levels. */
export function effectiveLevels(nodes: readonly GraphNode[], members: ReadonlySet<string>): Map<string, number> {
  const byName = memberMap(nodes, members);
  const levels = new Map<string, number>();
  const visiting = new Set<string>();
  const levelOf = (name: string): number => {
    const known = levels.get(name);
    if (known !== undefined) return known;
    const node = byName.get(name)!;
    if (visiting.has(name)) return node.level; // a cycle (reported by validateGraph): do not loop
    visiting.add(name);
    const level = Math.max(node.level, ...explicitDependencies(node, byName).map(levelOf));
    visiting.delete(name);
    levels.set(name, level);
    return level;
  };
  for (const name of byName.keys()) levelOf(name);
  return levels;
}

export function startRules(nodes: readonly GraphNode[], members: ReadonlySet<string>): Map<string, StartRule> {
  const byName = memberMap(nodes, members);
  const effective = effectiveLevels(nodes, members);
  const rules = new Map<string, StartRule>();
  for (const node of byName.values()) {
    const requires = unique(node.requires).filter((d) => d !== node.name && byName.has(d));
    const after = unique(node.after).filter((d) => d !== node.name && byName.has(d) && !requires.includes(d));
    const explicit = requires.length + after.length > 0;
    const levelBarrier = explicit ? null : [...byName.keys()].filter((other) => other !== node.name && effective.get(other)! < node.level);
    const externalRequires = unique(node.requires).filter((d) => d !== node.name && !byName.has(d));
    rules.set(node.name, { requires, after, levelBarrier, externalRequires });
  }
  return rules;
}

/** Everything a member waits for, among the members. */
function prerequisites(rule: StartRule): string[] {
  return [...rule.requires, ...rule.after, ...(rule.levelBarrier ?? [])];
}

/**
 * For each member: the members that must be stopped before it. Shutdown keeps levels strictly (a
 * level is stopped only once every higher effective level has stopped) and, within that, stops
 * dependents before what they depend on. Both point to an equal or higher effective level, so
 * this is acyclic whenever the explicit edges are.
 */
export function stopRules(nodes: readonly GraphNode[], members: ReadonlySet<string>): Map<string, string[]> {
  const byName = memberMap(nodes, members);
  const effective = effectiveLevels(nodes, members);
  const rules = new Map<string, string[]>();
  for (const name of byName.keys()) {
    rules.set(
      name,
      [...byName.values()]
        .filter((other) => other.name !== name)
        .filter((other) => effective.get(other.name)! > effective.get(name)! || explicitDependencies(other, byName).includes(name))
        .map((other) => other.name),
    );
  }
  return rules;
}

/** The members in start order: prerequisites first, then lower level, then config order. */
export function startOrder(nodes: readonly GraphNode[], members: ReadonlySet<string>): string[] {
  const rules = startRules(nodes, members);
  const waitsFor = new Map([...rules].map(([name, rule]) => [name, prerequisites(rule)]));
  return topologicalOrder(memberList(nodes, members), waitsFor, (a, b) => a.level - b.level || a.index - b.index);
}

/** The members in stop order: dependents first, then higher level, then reverse config order. */
export function stopOrder(nodes: readonly GraphNode[], members: ReadonlySet<string>): string[] {
  return topologicalOrder(memberList(nodes, members), stopRules(nodes, members), (a, b) => b.level - a.level || b.index - a.index);
}

/**
 * The start plan: stages of servers forked together, assuming each becomes ready at once.
 * Sequential mode forks one server per stage. In parallel mode an exclusive server gets a stage of
 * its own, because nothing else may be starting while it starts. What waits only for servers that
 * serve through the init's sockets (readiness: socket, lazy, accept) starts in their stage.
 */
export function planStages(nodes: readonly GraphNode[], members: ReadonlySet<string>, mode: "parallel" | "sequential"): string[][] {
  const order = startOrder(nodes, members);
  if (mode === "sequential") return order.map((name) => [name]);
  const rules = startRules(nodes, members);
  const exclusive = new Set(nodes.filter((n) => n.exclusive).map((n) => n.name));
  const early = new Set(nodes.filter(servesOnSockets).map((n) => n.name));
  const stages: string[][] = [];
  for (const layer of layers(order, (name) => prerequisites(rules.get(name)!), early)) {
    let group: string[] = [];
    for (const name of layer) {
      if (!exclusive.has(name)) {
        group.push(name);
        continue;
      }
      if (group.length > 0) stages.push(group);
      stages.push([name]);
      group = [];
    }
    if (group.length > 0) stages.push(group);
  }
  return stages;
}

/** The stop plan: stages of servers signalled together (the start plan's graph reversed). */
export function stopStages(nodes: readonly GraphNode[], members: ReadonlySet<string>): string[][] {
  const waitFor = stopRules(nodes, members);
  return layers(stopOrder(nodes, members), (name) => waitFor.get(name)!);
}

// ---- helpers ----------------------------------------------------------------------------------

function unique(names: readonly string[]): string[] {
  return [...new Set(names)];
}

function explicitDependencies(node: GraphNode, known: ReadonlyMap<string, GraphNode>): string[] {
  return unique([...node.requires, ...node.after]).filter((d) => known.has(d));
}

function memberMap(nodes: readonly GraphNode[], members: ReadonlySet<string>): Map<string, GraphNode> {
  return new Map(nodes.filter((n) => members.has(n.name)).map((n) => [n.name, n]));
}

interface Ranked {
  name: string;
  level: number;
  index: number;
}

function memberList(nodes: readonly GraphNode[], members: ReadonlySet<string>): Ranked[] {
  return nodes.flatMap((n, index) => (members.has(n.name) ? [{ name: n.name, level: n.level, index }] : []));
}

/**
 * Kahn's algorithm, taking the best-ranked available node each time. Nodes left on a cycle (which
 * validateGraph reports) are appended in rank order rather than dropped.
 */
function topologicalOrder(nodes: Ranked[], waitsFor: ReadonlyMap<string, readonly string[]>, compare: (a: Ranked, b: Ranked) => number): string[] {
  const remaining = [...nodes].sort(compare);
  const placed = new Set<string>();
  const order: string[] = [];
  while (remaining.length > 0) {
    let next = remaining.findIndex((n) => (waitsFor.get(n.name) ?? []).every((w) => placed.has(w)));
    if (next < 0) next = 0;
    const [node] = remaining.splice(next, 1);
    placed.add(node!.name);
    order.push(node!.name);
  }
  return order;
}

/**
 * Whether dependents may start with this server rather than after it: its sockets are the init's
 * (readiness: socket), or it listens (activation lazy or accept).
 */
export function servesOnSockets(node: GraphNode): boolean {
  return node.readyOnSockets === true || (node.activation !== undefined && node.activation !== "eager");
}

/**
 * Groups an order into layers: a node's layer is one more than the deepest of what it waits for, or
 * the same as that of what it waits for among `sameLayer` (servers that serve as soon as they start).
 */
function layers(order: readonly string[], waitsFor: (name: string) => readonly string[], sameLayer: ReadonlySet<string> = new Set()): string[][] {
  const depth = new Map<string, number>();
  const result: string[][] = [];
  for (const name of order) {
    const d = Math.max(0, ...waitsFor(name).map((w) => (depth.get(w) ?? -1) + (sameLayer.has(w) ? 0 : 1)));
    depth.set(name, d);
    (result[d] ??= []).push(name);
  }
  return result.filter((layer) => layer !== undefined);
}
