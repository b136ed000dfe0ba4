// The results: one markdown table per workload (median, min, max, and ours ÷ anchor), and the SVG
// chart of boot timelines (one bar per server from fork to ready, per contender).

import { stats } from "./common.mjs";

export function formatValue(value, unit) {
  if (!Number.isFinite(value)) return "–";
  switch (unit) {
    case "ms":
      if (Math.abs(value) >= 10_000) return `${(value / 1000).toFixed(1)} s`;
      if (Math.abs(value) >= 1000) return `${(value / 1000).toFixed(2)} s`;
      if (Math.abs(value) >= 100) return `${value.toFixed(0)} ms`;
      if (Math.abs(value) >= 10) return `${value.toFixed(1)} ms`;
      if (Math.abs(value) >= 1) return `${value.toFixed(2)} ms`;
      return `${(value * 1000).toFixed(value >= 0.01 ? 0 : 1)} µs`;
    case "MiB":
      return `${value.toFixed(1)} MiB`;
    case "KiB":
      return `${value.toFixed(value >= 100 ? 0 : 1)} KiB`;
    case "count":
      return `${Math.round(value)}`;
    default:
      return `${value.toPrecision(3)}${unit ? ` ${unit}` : ""}`;
  }
}

function formatRatio(ratio) {
  if (!Number.isFinite(ratio)) return "–";
  let text;
  if (ratio >= 100) text = ratio.toFixed(0);
  else if (ratio >= 10) text = ratio.toFixed(1);
  else if (ratio >= 0.1) text = ratio.toFixed(2);
  else text = ratio.toPrecision(2);
  return `${text}×`;
}

export class Results {
  constructor() {
    this.sections = new Map();
  }

  section(name) {
    if (!this.sections.has(name)) this.sections.set(name, { groups: new Map(), notes: [], extra: [] });
    return this.sections.get(name);
  }

  /**
   * row: { section, group, label, values, unit, anchor?, short?, compare?: [anchor labels], p99?,
   *        errors?, skipped?: reason, text?: preformatted cells {median, min, max, n} }
   */
  add(row) {
    const section = this.section(row.section);
    if (!section.groups.has(row.group)) section.groups.set(row.group, []);
    const s = row.values ? stats(row.values) : { n: 0, median: NaN, min: NaN, max: NaN, p99: NaN };
    section.groups.get(row.group).push({ ...row, stats: s });
  }

  skip(section, group, label, reason, extra = {}) {
    this.add({ section, group, label, skipped: reason, unit: "ms", ...extra });
  }

  /** Markdown lines printed after the section's table (e.g. a second, differently shaped table). */
  extra(section, lines) {
    this.section(section).extra.push(...lines, "");
  }

  note(section, text) {
    const notes = this.section(section).notes;
    if (!notes.includes(text)) notes.push(text);
  }

  /** Rows (with ratio text) of one group. */
  rows(groupRows) {
    return groupRows.map((row) => {
      let ratio = "";
      if (row.anchor) ratio = "anchor";
      else if (row.compare && !row.skipped) {
        const parts = [];
        for (const label of row.compare) {
          const anchor = groupRows.find((r) => r.label === label && !r.skipped && Number.isFinite(r.stats.median));
          if (!anchor || !Number.isFinite(row.stats.median)) continue;
          const r = row.stats.median / anchor.stats.median;
          const inverse = r > 0 && r < 0.5 ? ` (${(1 / r).toFixed(1 / r >= 10 ? 0 : 1)}× less)` : "";
          parts.push(`${formatRatio(r)} ${anchor.short ?? label}${inverse}`);
        }
        ratio = parts.join("; ") || "–";
      }
      return { row, ratio };
    });
  }

  markdown() {
    const out = [];
    const ordered = [...this.sections].sort(([a], [b]) => a.localeCompare(b, "en", { numeric: true }));
    for (const [name, section] of ordered) {
      out.push(`### ${name}`, "");
      if (section.groups.size === 0) {
        out.push(...section.extra);
        for (const note of section.notes) out.push(`- ${note}`);
        out.push("");
        continue;
      }
      const anyP99 = [...section.groups.values()].flat().some((r) => r.p99);
      const head = ["", "median", ...(anyP99 ? ["p99"] : []), "min", "max", "n", "ours ÷ anchor"];
      out.push(`| ${head.join(" | ")} |`, `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`);
      for (const [group, groupRows] of section.groups) {
        out.push(`| **${group}** |${" |".repeat(head.length - 1)}`);
        for (const { row, ratio } of this.rows(groupRows)) {
          if (row.skipped) {
            out.push(`| ${row.label} | *${row.skipped}* |${" |".repeat(head.length - 2)}`);
            continue;
          }
          const s = row.stats;
          const t = row.text ?? {};
          const cells = [
            row.label,
            t.median ?? formatValue(s.median, row.unit),
            ...(anyP99 ? [row.p99 ? formatValue(s.p99, row.unit) : ""] : []),
            t.min ?? formatValue(s.min, row.unit),
            t.max ?? formatValue(s.max, row.unit),
            t.n ?? `${s.n}${row.errors?.length ? ` (${row.errors.length} failed)` : ""}`,
            t.ratio ?? ratio,
          ];
          out.push(`| ${cells.join(" | ")} |`);
        }
      }
      out.push("");
      out.push(...section.extra);
      for (const note of section.notes) out.push(`- ${note}`);
      if (section.notes.length) out.push("");
    }
    return out.join("\n");
  }

  errors() {
    const list = [];
    for (const [name, section] of this.sections)
      for (const rows of section.groups.values()) for (const row of rows) for (const e of row.errors ?? []) list.push(`${name} / ${row.label}: ${e}`);
    return list;
  }

  toJSON() {
    const sections = {};
    for (const [name, section] of this.sections) {
      sections[name] = {
        notes: section.notes,
        groups: Object.fromEntries([...section.groups].map(([g, rows]) => [g, rows.map(({ stats: s, ...row }) => ({ ...row, stats: s }))])),
      };
    }
    return sections;
  }
}

// ---- boot timelines -------------------------------------------------------------------------------

export class Timelines {
  constructor() {
    /** shape key -> { title, contenders: Map(label -> { total, timeline }) } */
    this.shapes = new Map();
  }

  add(shapeKey, contender, run, title) {
    if (!this.shapes.has(shapeKey)) this.shapes.set(shapeKey, { title: title ?? shapeKey, contenders: new Map() });
    const shape = this.shapes.get(shapeKey);
    if (title) shape.title = title;
    shape.contenders.set(contender, run);
  }

  title(shapeKey, title) {
    if (!this.shapes.has(shapeKey)) this.shapes.set(shapeKey, { title, contenders: new Map() });
    else this.shapes.get(shapeKey).title = title;
  }
}

const LEVEL_COLOURS = ["#4269d0", "#efb118", "#3ca951", "#ff725c", "#a463f2", "#97bbf5", "#9c6b4e"];
const CONTENDER_ORDER = ["starter-init parallel", "forked by hand", "starter-init sequential (Starter spacing)", "Tango Starter"];

function esc(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function niceStep(max, ticks = 6) {
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= raw) return m * mag;
  return 10 * mag;
}

function seconds(ms) {
  if (ms >= 10_000) return `${(ms / 1000).toFixed(0)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms)} ms`;
}

/** Hand-written SVG: per boot shape an overview on one shared axis, then one panel per contender. */
export function timelineSvg(timelines, { shapes, subtitle }) {
  const width = 1000;
  const left = 250;
  const right = 30;
  const plotW = width - left - right;
  const barH = 9;
  const gap = 3;
  const parts = [];
  let y = 20;
  const text = (x, yy, s, attrs = "") => parts.push(`<text x="${x}" y="${yy}" ${attrs}>${esc(s)}</text>`);

  text(
    10,
    (y += 10),
    'Boot timelines: one bar per server from fork to its "Ready to accept request"; ◆ = its admin device answered a ping',
    'font-size="14" font-weight="bold"',
  );
  text(10, (y += 18), subtitle, 'font-size="11" fill="#555"');
  y += 14;

  for (const key of shapes) {
    const shape = timelines.shapes.get(key);
    if (!shape || shape.contenders.size === 0) continue;
    const contenders = [...shape.contenders.entries()].sort((a, b) => {
      const ia = CONTENDER_ORDER.indexOf(a[0]);
      const ib = CONTENDER_ORDER.indexOf(b[0]);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
    });
    y += 18;
    text(10, y, shape.title, 'font-size="14" font-weight="bold"');
    // Overview: every contender's total on one shared axis.
    const maxTotal = Math.max(...contenders.map(([, run]) => run.total));
    const step = niceStep(maxTotal);
    const axisMax = Math.ceil(maxTotal / step) * step;
    const sx = (ms) => left + (ms / axisMax) * plotW;
    y += 10;
    const overviewTop = y;
    for (const [label, run] of contenders) {
      y += 16;
      text(left - 6, y - 3, label, 'font-size="11" text-anchor="end"');
      parts.push(`<rect x="${left}" y="${y - 12}" width="${Math.max(1, sx(run.total) - left).toFixed(1)}" height="11" fill="#888"/>`);
      text(sx(run.total) + 4, y - 3, seconds(run.total), 'font-size="10" fill="#333"');
    }
    y += 6;
    for (let t = 0; t <= axisMax + 1e-9; t += step) {
      parts.push(`<line x1="${sx(t).toFixed(1)}" y1="${overviewTop}" x2="${sx(t).toFixed(1)}" y2="${y}" stroke="#ddd"/>`);
      text(sx(t), y + 11, seconds(t), 'font-size="9" text-anchor="middle" fill="#666"');
    }
    text(left, y + 24, "all contenders on one axis: total time until every server answered ping", 'font-size="10" fill="#666" font-style="italic"');
    y += 30;

    // One panel per contender, each with its own axis.
    for (const [label, run] of contenders) {
      const servers = run.timeline;
      const finite = servers.flatMap((s) => [s.fork, s.ready, s.pong]).filter(Number.isFinite);
      const pmax = Math.max(run.total, ...finite, 1);
      const pstep = niceStep(pmax);
      const paxis = Math.ceil(pmax / pstep) * pstep;
      const px = (ms) => left + (Math.max(0, ms) / paxis) * plotW;
      y += 20;
      text(10, y, `${label} — all answering ping after ${seconds(run.total)}`, 'font-size="12" font-weight="bold"');
      y += 6;
      const top = y;
      for (const s of servers) {
        y += barH + gap;
        const colour = LEVEL_COLOURS[(s.level - 1 + LEVEL_COLOURS.length) % LEVEL_COLOURS.length];
        text(left - 6, y - 1, `${s.name}${s.level > 1 || key === "10x5" ? ` (L${s.level})` : ""}`, 'font-size="9" text-anchor="end" fill="#444"');
        if (Number.isFinite(s.fork) && Number.isFinite(s.ready)) {
          const w = Math.max(1.5, px(s.ready) - px(s.fork));
          parts.push(
            `<rect x="${px(s.fork).toFixed(1)}" y="${y - barH}" width="${w.toFixed(1)}" height="${barH}" fill="${colour}"><title>${esc(`${s.name}: fork ${seconds(s.fork)}, ready ${seconds(s.ready)} (${Math.round(s.ready - s.fork)} ms)`)}</title></rect>`,
          );
        }
        if (Number.isFinite(s.pong)) {
          const cx = px(s.pong);
          const cy = y - barH / 2;
          parts.push(
            `<path d="M${(cx - 3.5).toFixed(1)} ${cy} L${cx.toFixed(1)} ${cy - 3.5} L${(cx + 3.5).toFixed(1)} ${cy} L${cx.toFixed(1)} ${cy + 3.5} Z" fill="#222"/>`,
          );
        }
      }
      y += 4;
      for (let t = 0; t <= paxis + 1e-9; t += pstep) {
        parts.push(`<line x1="${px(t).toFixed(1)}" y1="${top}" x2="${px(t).toFixed(1)}" y2="${y}" stroke="#eee"/>`);
        text(px(t), y + 10, seconds(t), 'font-size="9" text-anchor="middle" fill="#666"');
      }
      parts.push(`<line x1="${px(run.total).toFixed(1)}" y1="${top}" x2="${px(run.total).toFixed(1)}" y2="${y}" stroke="#c00" stroke-dasharray="3 3"/>`);
      y += 14;
    }
    y += 10;
  }
  // Legend.
  y += 10;
  let lx = left;
  for (let level = 1; level <= 5; level++) {
    parts.push(`<rect x="${lx}" y="${y - 9}" width="12" height="9" fill="${LEVEL_COLOURS[level - 1]}"/>`);
    text(lx + 16, y, `level ${level}`, 'font-size="10"');
    lx += 70;
  }
  text(lx + 10, y, "red dashes: all answered", 'font-size="10" fill="#c00"');
  y += 14;
  const height = y + 10;
  // Gridlines first so bars are drawn on top of them.
  const lines = parts.filter((p) => p.startsWith("<line"));
  const rest = parts.filter((p) => !p.startsWith("<line"));
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    ...lines,
    ...rest,
    "</svg>",
    "",
  ].join("\n");
}
