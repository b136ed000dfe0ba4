// `analyze plot`: the boot as an SVG timeline, in the spirit of `systemd-analyze plot`. One row per
// server that started, in fork order; its bar (class "bar") runs from the fork to ready (or to the
// failure, marked red and crossed); a thin lead-in shows the wait between the start decision and the
// fork; level bands group the rows; a dashed line marks when the boot completed. Written by hand:
// plain SVG 1.1, no scripts, no external resources.

import type { TimelineEntry, TimelineResult } from "../control/protocol";
import { duration } from "./format";

const ROW = 22;
const BAR = 14;
/** Columns: level, server name, the plot, then room for the note after the longest bar. */
const LEVEL_WIDTH = 36;
const LABEL_WIDTH = 260;
const PLOT_WIDTH = 900;
const NOTE_WIDTH = 300;
const TOP = 70;
const LEFT = 12;
const LEVEL_COLOURS = ["#4e79a7", "#59a14f", "#9c755f", "#b07aa1", "#76b7b2", "#edc948", "#bab0ac", "#ff9da7"];

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

/** A tick step giving about 8–12 ticks over `span` ms: 1, 2 or 5 × a power of ten. */
function tickStep(span: number): number {
  const rough = Math.max(span, 1) / 10;
  const power = 10 ** Math.floor(Math.log10(rough));
  for (const factor of [1, 2, 5, 10]) if (power * factor >= rough) return power * factor;
  return power * 10;
}

function tickLabel(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s`;
}

function end(entry: TimelineEntry, now: number): number {
  return entry.readyAt ?? entry.endAt ?? now;
}

/** Draws the servers forked during the boot; with `all`, also the first starts after it. */
export function plotSvg(timeline: TimelineResult, options: { all?: boolean; title?: string } = {}): string {
  const title = options.title ?? "starter-init boot";
  const entries = timeline.entries.filter((e) => options.all || e.duringBoot);
  const later = timeline.entries.length - entries.length;
  const now = timeline.nowMs;
  const span = Math.max(1, ...entries.map((e) => end(e, now)), timeline.bootCompleteMs ?? 0);
  const scale = PLOT_WIDTH / span;
  const x = (ms: number) => LEFT + LEVEL_WIDTH + LABEL_WIDTH + Math.max(0, ms) * scale;
  const height = TOP + entries.length * ROW + 40 + (timeline.notStarted.length || later ? 20 : 0);
  const width = LEFT + LEVEL_WIDTH + LABEL_WIDTH + PLOT_WIDTH + NOTE_WIDTH;
  const out: string[] = [];
  out.push('<?xml version="1.0" encoding="UTF-8"?>');
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
  );
  out.push(`<title>${escape(title)}</title>`);
  out.push(
    "<style>.bar{stroke:#333;stroke-width:0.5}.failed{fill:#e15759}.starting{fill:#f28e2b;fill-opacity:0.6}.lead{fill:#ccc}.band{fill-opacity:0.06}.tick{stroke:#ddd}.label{fill:#222}.note{fill:#555;font-size:11px}.failmark{stroke:#900;stroke-width:1.5}</style>",
  );
  out.push(`<rect class="background" x="0" y="0" width="${width}" height="${height}" fill="#fff"/>`);
  const complete = timeline.bootCompleteMs === null ? "boot not complete" : `boot complete after ${duration(timeline.bootCompleteMs)}`;
  const failures = entries.filter((e) => e.outcome === "failed").length;
  out.push(`<text class="label" x="${LEFT}" y="20" font-size="15" font-weight="bold">${escape(title)}</text>`);
  out.push(`<text class="note" x="${LEFT}" y="38">${escape(`${entries.length} servers started, ${failures} failed; ${complete}`)}</text>`);

  // Time axis.
  const step = tickStep(span);
  const bottom = TOP + entries.length * ROW;
  for (let t = 0; t <= span + 1e-9; t += step) {
    out.push(`<line class="tick" x1="${x(t).toFixed(1)}" y1="${TOP - 6}" x2="${x(t).toFixed(1)}" y2="${bottom}"/>`);
    out.push(`<text class="note" x="${x(t).toFixed(1)}" y="${TOP - 10}" text-anchor="middle">${escape(tickLabel(Math.round(t)))}</text>`);
  }

  // Level bands: consecutive rows of one level share a tinted band and a label.
  let first = 0;
  for (let i = 1; i <= entries.length; i++) {
    if (i < entries.length && entries[i].level === entries[first].level) continue;
    const level = entries[first].level;
    const colour = LEVEL_COLOURS[(level - 1 + LEVEL_COLOURS.length) % LEVEL_COLOURS.length];
    const y = TOP + first * ROW;
    out.push(`<rect class="band" x="${LEFT}" y="${y}" width="${width - 2 * LEFT}" height="${(i - first) * ROW}" fill="${colour}"/>`);
    out.push(`<text class="level" x="${LEFT + 4}" y="${y + 15}" font-weight="bold" fill="${colour}">L${level}</text>`);
    first = i;
  }

  entries.forEach((entry, row) => {
    const y = TOP + row * ROW + (ROW - BAR) / 2;
    const colour = LEVEL_COLOURS[(entry.level - 1 + LEVEL_COLOURS.length) % LEVEL_COLOURS.length];
    const fork = entry.forkAt ?? entry.startAt;
    const stop = end(entry, now);
    out.push(`<text class="label" x="${LEFT + LEVEL_WIDTH}" y="${y + BAR - 3}">${escape(entry.name)}</text>`);
    if (entry.forkAt !== null && entry.forkAt > entry.startAt) {
      out.push(
        `<rect class="lead" x="${x(entry.startAt).toFixed(1)}" y="${y + BAR / 2 - 1}" width="${((entry.forkAt - entry.startAt) * scale).toFixed(1)}" height="2"/>`,
      );
    }
    const kind = entry.outcome === "failed" ? " failed" : entry.outcome === "starting" ? " starting" : "";
    const fill = kind ? "" : ` fill="${entry.outcome === "cancelled" ? "#bab0ac" : colour}"`;
    const barWidth = Math.max(2, (stop - fork) * scale);
    const what =
      entry.outcome === "ready"
        ? `ready in ${duration(stop - fork)}`
        : entry.outcome === "failed"
          ? `failed after ${duration(stop - fork)}: ${entry.reason ?? "?"}`
          : entry.outcome === "cancelled"
            ? `cancelled (${entry.reason ?? "?"})`
            : "still starting";
    out.push(
      `<rect class="bar${kind}" x="${x(fork).toFixed(1)}" y="${y}" width="${barWidth.toFixed(1)}" height="${BAR}"${fill} data-server="${escape(entry.name)}"><title>${escape(`${entry.name}: ${what}`)}</title></rect>`,
    );
    if (entry.outcome === "failed") {
      const right = x(fork) + barWidth;
      out.push(`<line class="failmark" x1="${(right - 6).toFixed(1)}" y1="${y + 2}" x2="${(right + 2).toFixed(1)}" y2="${y + BAR - 2}"/>`);
      out.push(`<line class="failmark" x1="${(right - 6).toFixed(1)}" y1="${y + BAR - 2}" x2="${(right + 2).toFixed(1)}" y2="${y + 2}"/>`);
    }
    out.push(`<text class="note" x="${(x(fork) + barWidth + 6).toFixed(1)}" y="${y + BAR - 3}">${escape(what)}</text>`);
  });

  if (timeline.bootCompleteMs !== null) {
    const bx = x(timeline.bootCompleteMs).toFixed(1);
    out.push(`<line x1="${bx}" y1="${TOP - 6}" x2="${bx}" y2="${bottom + 6}" stroke="#333" stroke-dasharray="4 3"/>`);
    out.push(`<text class="note" x="${bx}" y="${bottom + 20}" text-anchor="middle">boot complete</text>`);
  }
  const footnotes: string[] = [];
  if (later) footnotes.push(`${later} started after the boot (not drawn; --all draws them)`);
  if (timeline.notStarted.length) footnotes.push(`not started: ${timeline.notStarted.map((s) => s.name).join(", ")}`);
  if (footnotes.length) out.push(`<text class="note" x="${LEFT}" y="${bottom + 36}">${escape(footnotes.join("; "))}</text>`);
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
