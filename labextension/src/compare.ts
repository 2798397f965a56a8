/**
 * The comparison of runs the Runs section opens: one metric's per-epoch curves of every run,
 * overlaid in a small hand-drawn SVG chart, then the table `nbversion runs compare` prints
 * (status, dataset version, best epoch and only the parameters that differ).
 */
import { el, resultNode } from './dom';
import { IRunsCompare } from './model';

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 480;
const HEIGHT = 220;
const PAD = { left: 40, right: 8, top: 8, bottom: 18 };
// JupyterLab's own palette where the theme has it, readable on light and dark themes alike
const COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2',
  '#7f7f7f', '#bcbd22', '#17becf'];

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attributes: { [name: string]: string | number }): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  Object.entries(attributes).forEach(([name, value]) => node.setAttribute(name, String(value)));
  return node;
}

/** The metrics any of the runs records, the compared one first. */
export function metricsOf(result: IRunsCompare): string[] {
  const names = new Set<string>();
  Object.values(result.series).forEach(series => Object.keys(series).forEach(name => names.add(name)));
  names.delete('epoch');
  return [result.metric, ...[...names].filter(name => name !== result.metric).sort()];
}

/** One polyline per run that records the metric (class nbv-CompareLine), epochs on x. */
export function curves(result: IRunsCompare): SVGSVGElement {
  const chart = svg('svg', { width: WIDTH, height: HEIGHT, viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: 'nbv-CompareChart' });
  const lines = result.runs.map(run => (result.series[run.id] || {})[result.metric] || []);
  const values = ([] as (number | null)[]).concat(...lines).filter((v): v is number => typeof v === 'number');
  if (!values.length) {
    return chart;
  }
  const epochs = Math.max(...lines.map(line => line.length), 2);
  let low = Math.min(...values);
  let high = Math.max(...values);
  if (high === low) {
    [low, high] = [low - 0.5, high + 0.5];   // a flat curve sits mid-chart
  }
  const x = (epoch: number) => PAD.left + ((epoch - 1) / (epochs - 1)) * (WIDTH - PAD.left - PAD.right);
  const y = (value: number) => HEIGHT - PAD.bottom - ((value - low) / (high - low)) * (HEIGHT - PAD.top - PAD.bottom);
  chart.appendChild(svg('rect', { x: PAD.left, y: PAD.top, width: WIDTH - PAD.left - PAD.right,
    height: HEIGHT - PAD.top - PAD.bottom, class: 'nbv-CompareFrame' }));
  const label = (text: string, ax: number, ay: number, anchor: string) => {
    const node = svg('text', { x: ax, y: ay, 'text-anchor': anchor, class: 'nbv-CompareAxis' });
    node.textContent = text;
    chart.appendChild(node);
  };
  label(high.toPrecision(3), PAD.left - 3, PAD.top + 8, 'end');
  label(low.toPrecision(3), PAD.left - 3, HEIGHT - PAD.bottom, 'end');
  label('epoch 1', PAD.left, HEIGHT - 4, 'start');
  label(`${epochs}`, WIDTH - PAD.right, HEIGHT - 4, 'end');
  lines.forEach((line, index) => {
    const points = line
      .map((value, i) => (typeof value === 'number' ? `${x(i + 1).toFixed(1)},${y(value).toFixed(1)}` : ''))
      .filter(point => point);
    if (!points.length) {
      return;
    }
    const colour = COLOURS[index % COLOURS.length];
    const polyline = svg('polyline', { points: points.join(' '), fill: 'none', stroke: colour,
      'stroke-width': 1.5, class: 'nbv-CompareLine' });
    polyline.appendChild(svg('title', {})).textContent = result.runs[index].id;
    chart.appendChild(polyline);
    if (points.length === 1) {   // one epoch: a dot, a line of one point draws nothing
      const [cx, cy] = points[0].split(',');
      chart.appendChild(svg('circle', { cx, cy, r: 2.5, fill: colour }));
    }
  });
  return chart;
}

/** Chart, legend (run, best epoch and value) and the CLI's table. */
export function comparisonNode(result: IRunsCompare, metricPicker: HTMLElement): HTMLElement {
  const legend = el('div', 'nbv-CompareLegend', '', result.runs.map((run, index) => {
    const swatch = el('span', 'nbv-CompareSwatch');
    swatch.style.background = COLOURS[index % COLOURS.length];
    const best = run.best === null ? 'no value' : `best ${run.best.toPrecision(4)} at epoch ${run.best_epoch}`;
    return el('div', '', '', [swatch, el('span', '', `${run.id}: ${best}`)]);
  }));
  return el('div', 'nbv-Compare', '', [
    el('div', 'nbv-Form', '', [el('label', 'nbv-Label', 'metric'), metricPicker]),
    curves(result),
    legend,
    resultNode(result)
  ]);
}
