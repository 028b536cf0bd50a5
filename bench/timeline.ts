// An SVG timeline of a rolling replacement: one row per member, from its old executable's stop
// request (Engine `kill`) through `die` and the new executable's `start` to ready.
export interface MemberTimeline {
  name: string;
  /** Milliseconds since the rollout's `up` began. */
  kill?: number;
  die?: number;
  start?: number;
  ready?: number;
}

export interface TimelinePanel {
  title: string;
  /** Wall time of the whole `up`, ms (the x axis spans it). */
  durationMs: number;
  members: MemberTimeline[];
}

const COLORS = { stopping: "#9e9e9e", down: "#d32f2f", starting: "#f9a825", ready: "#2e7d32" };

export function renderTimeline(title: string, panels: TimelinePanel[]): string {
  const width = 1000;
  const left = 110;
  const right = 20;
  const plotWidth = width - left - right;
  const rowHeight = (n: number) => Math.max(2, Math.min(10, Math.floor(400 / Math.max(n, 1))));
  const parts: string[] = [];
  let y = 40;
  parts.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escape(title)}</text>`);
  for (const panel of panels) {
    const h = rowHeight(panel.members.length);
    const span = Math.max(panel.durationMs, 1);
    const x = (ms: number) => left + (Math.max(0, ms) / span) * plotWidth;
    parts.push(`<text x="${left}" y="${y + 14}" font-size="13" font-weight="bold">${escape(panel.title)}</text>`);
    y += 24;
    const top = y;
    panel.members.forEach((m, i) => {
      const rowY = top + i * h;
      if (panel.members.length <= 40 || i % Math.ceil(panel.members.length / 20) === 0) {
        parts.push(`<text x="${left - 6}" y="${rowY + h - 1}" text-anchor="end" font-size="${Math.min(10, h + 2)}">${escape(m.name)}</text>`);
      }
      const bar = (from: number | undefined, to: number | undefined, color: string, label: string) => {
        if (from === undefined || to === undefined || to < from) return;
        const w = Math.max(x(to) - x(from), 0.8);
        parts.push(
          `<rect x="${x(from).toFixed(2)}" y="${rowY}" width="${w.toFixed(2)}" height="${Math.max(h - 1, 1)}" fill="${color}"><title>${escape(`${m.name} ${label}: ${Math.round(to - from)} ms`)}</title></rect>`,
        );
      };
      bar(m.kill, m.die ?? m.start, COLORS.stopping, "stopping");
      bar(m.die ?? m.kill, m.start, COLORS.down, "no executable");
      bar(m.start, m.ready, COLORS.starting, "starting until ready");
      if (m.ready !== undefined)
        parts.push(`<rect x="${x(m.ready).toFixed(2)}" y="${rowY}" width="1.5" height="${Math.max(h - 1, 1)}" fill="${COLORS.ready}"/>`);
    });
    const bottom = top + panel.members.length * h + 4;
    parts.push(`<line x1="${left}" y1="${bottom}" x2="${left + plotWidth}" y2="${bottom}" stroke="#333"/>`);
    const step = niceStep(span / 1000);
    for (let s = 0; s * 1000 <= span; s += step) {
      const tx = x(s * 1000);
      parts.push(
        `<line x1="${tx}" y1="${bottom}" x2="${tx}" y2="${bottom + 4}" stroke="#333"/><text x="${tx}" y="${bottom + 15}" text-anchor="middle" font-size="10">${s}s</text>`,
      );
    }
    y = bottom + 30;
  }
  const legend = [
    ["stopping (kill → die)", COLORS.stopping],
    ["no executable (die → start)", COLORS.down],
    ["starting (start → ready)", COLORS.starting],
    ["ready", COLORS.ready],
  ];
  legend.forEach(([label, color], i) => {
    parts.push(
      `<rect x="${left + i * 210}" y="${y}" width="12" height="10" fill="${color}"/><text x="${left + i * 210 + 16}" y="${y + 9}" font-size="11">${escape(label!)}</text>`,
    );
  });
  y += 24;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${parts.join("\n")}\n</svg>\n`;
}

function niceStep(seconds: number): number {
  for (const step of [1, 2, 5, 10, 15, 30, 60, 120, 300, 600]) if (seconds / step <= 12) return step;
  return 1200;
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** What each character of a text timeline stands for (the SVG's colours, in order). */
export const TEXT_TIMELINE_LEGEND = "░ stopping (kill → die)   █ no executable (die → start)   ▓ starting (start → ready)   | ready";

/**
 * The same picture for a terminal: one row per member, `width` columns spanning the whole `up`, each
 * row followed by the member's stop request → ready time. Lines without a trailing newline.
 */
export function renderTimelineText(panel: TimelinePanel, width = 50): string[] {
  const span = Math.max(panel.durationMs, 1);
  const column = (ms: number) => Math.min(width - 1, Math.max(0, Math.floor((ms / span) * width)));
  const nameWidth = Math.max(0, ...panel.members.map((m) => m.name.length));
  const rows = panel.members.map((m) => {
    const cells: string[] = Array.from({ length: width }, () => " ");
    const fill = (from: number | undefined, to: number | undefined, char: string) => {
      if (from === undefined || to === undefined || to < from) return;
      for (let c = column(from); c <= column(to); c++) cells[c] = char;
    };
    fill(m.kill, m.die ?? m.start, "░");
    fill(m.die ?? m.kill, m.start, "█");
    fill(m.start, m.ready, "▓");
    if (m.ready !== undefined) cells[column(m.ready)] = "|";
    const gap = m.kill !== undefined && m.ready !== undefined ? `  stop → ready ${((m.ready - m.kill) / 1000).toFixed(1)} s` : "";
    return `${m.name.padEnd(nameWidth)}  ${cells.join("")}${gap}`;
  });
  const end = `${(span / 1000).toFixed(1)} s`;
  rows.push(`${" ".repeat(nameWidth)}  0 s${end.padStart(width - 3)}`);
  return rows;
}
