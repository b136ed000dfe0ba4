import { describe, expect, it } from "vitest";
import { bootSet, effectiveLevels, findCycles, planStages, startOrder, startRules, stopOrder, stopStages, type GraphNode } from "../../../init/core/graph";

function node(name: string, level: number, more: Partial<GraphNode> = {}): GraphNode {
  return { name, level, requires: [], after: [], exclusive: false, autostart: true, ...more };
}

const all = (nodes: GraphNode[]): Set<string> => new Set(nodes.map((n) => n.name));

// Duplicate names and unknown dependencies are config errors: test/unit/config/errors.test.ts.
describe("findCycles", () => {
  it("finds none in a valid graph", () => {
    expect(findCycles([node("db", 1), node("ds", 2, { requires: ["db"] }), node("gui", 3, { after: ["ds"] })])).toEqual([]);
  });

  it("names a cycle by its path", () => {
    expect(findCycles([node("a", 1, { requires: ["b"] }), node("b", 1, { requires: ["c"] }), node("c", 1, { after: ["a"] })])).toEqual([["a", "b", "c", "a"]]);
  });

  it("reports a self-dependency as a cycle", () => {
    expect(findCycles([node("a", 1, { requires: ["a"] })])).toEqual([["a", "a"]]);
  });

  it("reports each distinct cycle once", () => {
    const nodes = [
      node("a", 1, { requires: ["b"] }),
      node("b", 1, { requires: ["a"] }),
      node("c", 1, { requires: ["d", "a"] }),
      node("d", 1, { requires: ["c"] }),
    ];
    expect(findCycles(nodes)).toEqual([
      ["a", "b", "a"],
      ["c", "d", "c"],
    ]);
  });
});

describe("bootSet", () => {
  it("leaves out level 0, levels above maxLevel and autostart=false", () => {
    const nodes = [node("l0", 0), node("l1", 1), node("l3", 3), node("l4", 4), node("manual", 2, { autostart: false })];
    expect([...bootSet(nodes, 3)]).toEqual(["l1", "l3"]);
  });
});

describe("start rules", () => {
  it("a server without explicit dependencies waits for every lower level", () => {
    const nodes = [node("a", 1), node("b", 1), node("c", 2), node("d", 3)];
    const rules = startRules(nodes, all(nodes));
    expect(rules.get("a")!.levelBarrier).toEqual([]);
    expect(rules.get("c")!.levelBarrier).toEqual(["a", "b"]);
    expect(rules.get("d")!.levelBarrier).toEqual(["a", "b", "c"]);
  });

  it("explicit dependencies replace the level barrier", () => {
    const nodes = [node("db", 1), node("slow", 1), node("mid", 2), node("ds", 3, { requires: ["db"] })];
    const rule = startRules(nodes, all(nodes)).get("ds")!;
    expect(rule).toEqual({ requires: ["db"], after: [], levelBarrier: null, externalRequires: [] });
  });

  it("dependencies outside the members: `after` is dropped, `requires` becomes external", () => {
    const nodes = [node("db", 1), node("x", 1), node("ds", 2, { requires: ["db"], after: ["x"] })];
    const rule = startRules(nodes, new Set(["ds"])).get("ds")!;
    expect(rule).toEqual({ requires: [], after: [], levelBarrier: [], externalRequires: ["db"] });
  });

  it("a server that depends on a higher level counts at that level for the barriers", () => {
    // a (level 1) requires c (level 3): b (level 2) must not wait for a, or b → a → c → b would deadlock.
    const nodes = [node("a", 1, { requires: ["c"] }), node("b", 2), node("c", 3)];
    expect(Object.fromEntries(effectiveLevels(nodes, all(nodes)))).toEqual({ a: 3, b: 2, c: 3 });
    const rules = startRules(nodes, all(nodes));
    expect(rules.get("b")!.levelBarrier).toEqual([]);
    expect(rules.get("c")!.levelBarrier).toEqual(["b"]);
    expect(startOrder(nodes, all(nodes))).toEqual(["b", "c", "a"]);
  });
});

describe("start order and plan", () => {
  const nodes = [node("db", 1), node("log", 1), node("ds1", 2), node("ds2", 2), node("early", 3, { after: ["db"] }), node("gui", 3)];

  it("orders levels ascending, dependencies first", () => {
    expect(startOrder(nodes, all(nodes))).toEqual(["db", "log", "ds1", "ds2", "early", "gui"]);
  });

  it("parallel plan: a server with dependencies starts as soon as they are ready", () => {
    expect(planStages(nodes, all(nodes), "parallel")).toEqual([["db", "log"], ["ds1", "ds2", "early"], ["gui"]]);
  });

  it("sequential plan: one server per stage, in start order", () => {
    expect(planStages(nodes, all(nodes), "sequential")).toEqual([["db"], ["log"], ["ds1"], ["ds2"], ["early"], ["gui"]]);
  });

  it("an exclusive server gets a stage of its own", () => {
    const withExclusive = [node("a", 1), node("x", 1, { exclusive: true }), node("b", 1), node("c", 2)];
    expect(planStages(withExclusive, all(withExclusive), "parallel")).toEqual([["a"], ["x"], ["b"], ["c"]]);
  });

  it("plans only the members", () => {
    expect(planStages(nodes, new Set(["ds1", "gui"]), "parallel")).toEqual([["ds1"], ["gui"]]);
  });
});

describe("stop order", () => {
  it("reverses levels; dependents before their dependencies", () => {
    const nodes = [node("db", 1), node("log", 1), node("ds", 2, { requires: ["db"] }), node("gui", 3)];
    expect(stopOrder(nodes, all(nodes))).toEqual(["gui", "ds", "log", "db"]);
    expect(stopStages(nodes, all(nodes))).toEqual([["gui"], ["ds"], ["log", "db"]]);
  });

  it("within a level, a dependent stops before its dependency", () => {
    const nodes = [node("db", 1), node("ds", 1, { requires: ["db"] }), node("other", 1)];
    expect(stopStages(nodes, all(nodes))).toEqual([["other", "ds"], ["db"]]);
  });

  it("a server that requires a higher level stops with (before) that level", () => {
    const nodes = [node("a", 1, { requires: ["c"] }), node("b", 2), node("c", 3)];
    expect(stopStages(nodes, all(nodes))).toEqual([["a"], ["c"], ["b"]]);
  });

  it("levels in reverse, each level as one stage", () => {
    const nodes = [node("a", 1), node("b", 1), node("c", 2), node("d", 2), node("e", 3)];
    expect(stopStages(nodes, all(nodes))).toEqual([["e"], ["d", "c"], ["b", "a"]]);
  });
});
