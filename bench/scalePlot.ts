// The scale bench's plot (bench/results/scale.svg): rollout wall time vs group size N, log-log, one
// line per (system, concurrency k). Hand-written SVG, like bench/timeline.ts.
export interface ScaleSeries {
  system: string;
  k: number;
  /** [N, ms] */
  points: [number, number][];
}

const COLORS: Record<string, string> = {
  "reseat fleet": "#1565c0",
  "reseat group": "#64b5f6",
  floor: "#757575",
  opentofu: "#7b1fa2",
  compose: "#ef6c00",
  statefulset: "#2e7d32",
};
const DASHES = ["", "7 4", "2 3", "10 3 2 3"];

export function renderScalePlot(title: string, series: ScaleSeries[]): string {
  const width = 900;
  const height = 560;
  const margin = { left: 80, right: 230, top: 50, bottom: 60 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const all = series.flatMap((s) => s.points).filter(([n, ms]) => n > 0 && ms > 0);
  const parts: string[] = [`<text x="${width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escape(title)}</text>`];
  if (!all.length) {
    parts.push(`<text x="${width / 2}" y="${height / 2}" text-anchor="middle" font-size="13">no measurements yet</text>`);
    return svg(width, height, parts);
  }
  const decade = (v: number, up: boolean) => 10 ** (up ? Math.ceil(Math.log10(v)) : Math.floor(Math.log10(v)));
  const nMin = decade(Math.min(...all.map(([n]) => n)), false);
  const nMax = Math.max(decade(Math.max(...all.map(([n]) => n)), true), nMin * 10);
  const sMin = decade(Math.min(...all.map(([, ms]) => ms)) / 1000, false);
  const sMax = Math.max(decade(Math.max(...all.map(([, ms]) => ms)) / 1000, true), sMin * 10);
  const x = (n: number) => margin.left + ((Math.log10(n) - Math.log10(nMin)) / (Math.log10(nMax) - Math.log10(nMin))) * plotW;
  const y = (ms: number) => margin.top + plotH - ((Math.log10(ms / 1000) - Math.log10(sMin)) / (Math.log10(sMax) - Math.log10(sMin))) * plotH;

  // Axes, with a grid line per decade (and at 2x, 5x).
  for (let d = nMin; d <= nMax; d *= 10) {
    for (const m of [1, 2, 5]) {
      const n = d * m;
      if (n > nMax) continue;
      parts.push(`<line x1="${x(n)}" y1="${margin.top}" x2="${x(n)}" y2="${margin.top + plotH}" stroke="${m === 1 ? "#ccc" : "#eee"}"/>`);
      parts.push(`<text x="${x(n)}" y="${margin.top + plotH + 16}" text-anchor="middle" font-size="11">${n}</text>`);
    }
  }
  for (let d = sMin; d <= sMax * 1.0001; d *= 10) {
    for (const m of [1, 2, 5]) {
      const s = d * m;
      if (s > sMax * 1.0001) continue;
      parts.push(`<line x1="${margin.left}" y1="${y(s * 1000)}" x2="${margin.left + plotW}" y2="${y(s * 1000)}" stroke="${m === 1 ? "#ccc" : "#eee"}"/>`);
      parts.push(`<text x="${margin.left - 6}" y="${y(s * 1000) + 4}" text-anchor="end" font-size="11">${formatSeconds(s)}</text>`);
    }
  }
  parts.push(`<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`);
  parts.push(`<text x="${margin.left + plotW / 2}" y="${height - 18}" text-anchor="middle" font-size="12">group size N (members)</text>`);
  parts.push(
    `<text x="18" y="${margin.top + plotH / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 18 ${margin.top + plotH / 2})">rollout wall time (s)</text>`,
  );

  const ks = [...new Set(series.map((s) => s.k))].sort((a, b) => a - b);
  series.forEach((s, i) => {
    const color = COLORS[s.system] ?? "#000";
    const dash = DASHES[Math.max(0, ks.indexOf(s.k)) % DASHES.length];
    const points = s.points.filter(([n, ms]) => n > 0 && ms > 0).sort((a, b) => a[0] - b[0]);
    if (points.length > 1) {
      parts.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2" ${dash ? `stroke-dasharray="${dash}"` : ""} points="${points.map(([n, ms]) => `${x(n).toFixed(1)},${y(ms).toFixed(1)}`).join(" ")}"/>`,
      );
    }
    for (const [n, ms] of points) {
      parts.push(
        `<circle cx="${x(n).toFixed(1)}" cy="${y(ms).toFixed(1)}" r="3.5" fill="${color}"><title>${escape(`${s.system} k=${s.k}, N=${n}: ${(ms / 1000).toFixed(2)} s`)}</title></circle>`,
      );
    }
    const ly = margin.top + 10 + i * 20;
    const lx = margin.left + plotW + 20;
    parts.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 30}" y2="${ly}" stroke="${color}" stroke-width="2" ${dash ? `stroke-dasharray="${dash}"` : ""}/>`);
    parts.push(`<text x="${lx + 36}" y="${ly + 4}" font-size="11">${escape(`${s.system}, k = ${s.k}`)}</text>`);
  });
  return svg(width, height, parts);
}

function formatSeconds(s: number): string {
  return s >= 1 ? `${s} s` : `${Math.round(s * 1000)} ms`;
}

function svg(width: number, height: number, parts: string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${parts.join("\n")}\n</svg>\n`;
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
