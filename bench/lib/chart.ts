/**
 * The bench chart as a self-contained SVG: utilization per scenario and tenant (with the 95 %
 * goal line) and throughput of the gateway next to the two baselines.
 */
import type { BenchReport } from './bench';
import { PACED_BELOW_CAPACITY } from './scenarios';

interface Bar {
  label: string;
  value: number;
  text: string;
  color: string;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const COLORS = { gateway: '#2b6cb0', throttled: '#c05621', batch: '#2f855a', baseline: '#718096', goal: '#c53030' };

function panel(
  title: string,
  bars: Bar[],
  top: number,
  options: { width: number; labelWidth: number; goal?: { value: number; label: string }; unit: (v: number) => string },
): { svg: string; height: number } {
  const barHeight = 22;
  const gap = 10;
  const plotLeft = options.labelWidth + 20;
  const plotWidth = options.width - plotLeft - 90;
  const max = Math.max(options.goal ? options.goal.value * 1.15 : 0, ...bars.map((b) => b.value), 1e-9) * 1.08;
  const x = (v: number) => plotLeft + (v / max) * plotWidth;
  // Room under the title for the goal's label, when there is one.
  const plotTop = top + (options.goal ? 52 : 34);
  const plotHeight = bars.length * (barHeight + gap);
  const parts: string[] = [`<text x="20" y="${top + 18}" class="title">${esc(title)}</text>`];
  // Grid and ticks: 5 steps on a round scale.
  const rawStep = max / 5;
  const magnitude = 10 ** Math.floor(Math.log10(rawStep));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= rawStep) ?? rawStep;
  for (let v = 0; v <= max + 1e-9; v += step) {
    parts.push(
      `<line x1="${x(v).toFixed(1)}" y1="${plotTop - 4}" x2="${x(v).toFixed(1)}" y2="${plotTop + plotHeight}" class="grid"/>`,
    );
    parts.push(
      `<text x="${x(v).toFixed(1)}" y="${plotTop + plotHeight + 16}" class="tick" text-anchor="middle">${esc(options.unit(v))}</text>`,
    );
  }
  if (options.goal) {
    const gx = x(options.goal.value).toFixed(1);
    parts.push(`<line x1="${gx}" y1="${plotTop - 8}" x2="${gx}" y2="${plotTop + plotHeight}" class="goal"/>`);
    parts.push(
      `<text x="${gx}" y="${plotTop - 12}" class="goal-label" text-anchor="middle">${esc(options.goal.label)}</text>`,
    );
  }
  // Bars and their values over the goal line, so the values stay readable.
  bars.forEach((b, i) => {
    const y = plotTop + i * (barHeight + gap);
    parts.push(
      `<text x="${plotLeft - 10}" y="${y + barHeight / 2 + 5}" class="label" text-anchor="end">${esc(b.label)}</text>`,
    );
    parts.push(
      `<rect x="${plotLeft}" y="${y}" width="${Math.max(1, x(b.value) - plotLeft).toFixed(1)}" height="${barHeight}" fill="${b.color}" rx="2"/>`,
    );
    parts.push(
      `<text x="${(x(b.value) + 6).toFixed(1)}" y="${y + barHeight / 2 + 5}" class="value">${esc(b.text)}</text>`,
    );
  });
  return { svg: parts.join('\n'), height: plotTop - top + plotHeight + 30 };
}

export function renderChart(report: BenchReport): string {
  const width = 960;
  const labelWidth = 330;
  const pct = (v: number) => `${Math.round(v * 100)} %`;
  const util: Bar[] = [];
  // Utilization bars compare capacity; scenarios paced below it on purpose would only show their arrival rate.
  for (const s of report.scenarios.filter((x) => !PACED_BELOW_CAPACITY.includes(x.name))) {
    for (const t of s.tenants) {
      const label =
        s.tenants.length > 1
          ? `${s.name}: ${t.name}${t.throttledBySandbox ? ' (throttled)' : ' (healthy)'}`
          : `${s.name}${s.name === report.headline.scenario ? ' (headline)' : ''} · ${s.latencyMs} ms`;
      util.push({
        label,
        value: t.utilization,
        text: `${pct(t.utilization)} · ${t.throughputPerSecond}/s`,
        color: t.throttledBySandbox
          ? COLORS.throttled
          : s.hostSettings.EXO_BATCH_MAX !== '1'
            ? COLORS.batch
            : COLORS.gateway,
      });
    }
  }
  for (const b of report.baselines)
    util.push({
      label: `baseline: ${b.name} · ${b.latencyMs} ms`,
      value: b.utilization,
      text: `${pct(b.utilization)} · ${b.throughputPerSecond}/s`,
      color: COLORS.baseline,
    });
  const top = panel('Throughput as a share of the ideal (cap ÷ Exchange latency), per tenant', util, 50, {
    width,
    labelWidth,
    goal: { value: 0.95, label: 'goal 95 %' },
    unit: pct,
  });

  const headline = report.scenarios.find((s) => s.name === report.headline.scenario)?.tenants[0];
  const defaults = report.scenarios.find((s) => s.name === 'defaults')?.tenants[0];
  const through: Bar[] = [];
  if (defaults)
    through.push({
      label: 'gateway, default settings ($batch on)',
      value: defaults.throughputPerSecond,
      text: `${defaults.throughputPerSecond}/s`,
      color: COLORS.batch,
    });
  if (headline)
    through.push({
      label: `gateway, ${report.headline.scenario}, no batching`,
      value: headline.throughputPerSecond,
      text: `${headline.throughputPerSecond}/s`,
      color: COLORS.gateway,
    });
  for (const b of report.baselines) {
    const times = (g: { throughputPerSecond: number } | undefined, name: string) =>
      g ? `${name} ${(g.throughputPerSecond / Math.max(b.throughputPerSecond, 1e-9)).toFixed(1)}×` : undefined;
    const ratios = [times(defaults, 'defaults'), times(headline, 'no batching')].filter(Boolean).join(', ');
    through.push({
      label: `baseline: ${b.name}`,
      value: b.throughputPerSecond,
      text: `${b.throughputPerSecond}/s${ratios ? ` (gateway: ${ratios})` : ''}`,
      color: COLORS.baseline,
    });
  }
  const bottom = panel(
    `Commands per second, one tenant, ${headline ? `${report.scenarios.find((s) => s.name === report.headline.scenario)!.latencyMs} ms` : ''} Exchange latency, cap ${report.settings.BENCH_CAP}`,
    through,
    50 + top.height + 20,
    { width, labelWidth, unit: (v) => `${Math.round(v)}` },
  );

  const height = 50 + top.height + 20 + bottom.height + 40;
  const m = report.machine;
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="t">
<title id="t">exo-gateway bench ${esc(report.measuredAt)}</title>
<style>
text { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; fill: #1a202c; }
.h { font-size: 20px; font-weight: 600; }
.title { font-size: 15px; font-weight: 600; }
.label { font-size: 13px; }
.value { font-size: 12px; fill: #2d3748; paint-order: stroke; stroke: #ffffff; stroke-width: 3px; }
.tick { font-size: 11px; fill: #4a5568; }
.note { font-size: 11px; fill: #4a5568; }
.grid { stroke: #e2e8f0; stroke-width: 1; }
.goal { stroke: ${COLORS.goal}; stroke-width: 2; stroke-dasharray: 6 4; }
.goal-label { font-size: 12px; fill: ${COLORS.goal}; font-weight: 600; }
</style>
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="20" y="30" class="h">exo-gateway: npm run bench</text>
${top.svg}
${bottom.svg}
<text x="20" y="${height - 14}" class="note">${esc(`${report.measuredAt.slice(0, 19)}Z · ${m.cores} cores, node ${m.node} · ${report.settings.BENCH_COMMANDS} commands per scenario · blue: gateway, green: $batch on, orange: throttled tenant, grey: baselines`)}</text>
</svg>
`;
}
