/**
 * Small DOM helpers of the sidebar: elements, JupyterLab-styled buttons and inputs, and the
 * table every core result is drawn as (its CLI table, highlighted rows included).
 */
import { IResult, IView } from './model';

/** Builds a DOM element in one call: tag, class names, text, children. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = '',
  text = '',
  children: Node[] = []
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text) {
    node.textContent = text;
  }
  children.forEach(child => node.appendChild(child));
  return node;
}

export function button(
  label: string,
  onClick: () => void,
  kind: 'accept' | 'reject' | 'plain' = 'plain',
  title = ''
): HTMLButtonElement {
  const node = el('button', `jp-Button jp-mod-styled jp-mod-${kind} nbv-Button`, label);
  node.title = title;
  node.onclick = onClick;
  return node;
}

export function input(placeholder: string, value = ''): HTMLInputElement {
  const node = el('input', 'jp-mod-styled nbv-Input');
  node.placeholder = placeholder;
  node.value = value;
  return node;
}

/** Index of the first header matching `pattern`, or -1. */
export function column(view: IView, pattern: RegExp): number {
  return view.headers.findIndex(header => pattern.test(header));
}

/** Rows to draw: the first `limit` (newest first if asked) plus every highlighted one. */
export function pickRows(view: IView, limit: number, newestFirst = false): number[] {
  const order = view.rows.map((_, index) => index);
  if (newestFirst) {
    order.reverse();
  }
  const picked = order.slice(0, limit);
  const kept = new Set(picked);
  view.highlight.filter(index => !kept.has(index)).forEach(index => picked.push(index));
  return picked;
}

/** The same table the CLI prints; `actions` adds a cell of buttons per row. */
export function table(
  view: IView,
  actions?: (row: string[], index: number) => Node | null,
  rows?: number[]
): HTMLElement {
  const head = el('tr', '', '', view.headers.map(h => el('th', '', h)));
  if (actions) {
    head.appendChild(el('th'));
  }
  const body = el('tbody');
  const picked = rows ?? view.rows.map((_, index) => index);
  for (const index of picked) {
    const row = view.rows[index];
    const tr = el('tr', '', '', row.map(cell => el('td', '', cell ?? '')));
    if (view.highlight.includes(index)) {
      tr.classList.add('nbv-mod-highlight');
    }
    if (actions) {
      const cell = el('td', 'nbv-Actions');
      const action = actions(row, index);
      if (action) {
        cell.appendChild(action);
      }
      tr.appendChild(cell);
    }
    body.appendChild(tr);
  }
  return el('table', 'nbv-Table', '', [el('thead', '', '', [head]), body]);
}

/** A result as the notebook would show it: table and summary line. */
export function resultNode(result: IResult | null, empty = 'nothing yet'): HTMLElement {
  const box = el('div', 'nbv-Result');
  const view = result?.view;
  if (!view) {
    box.appendChild(el('div', 'nbv-Note', empty));
    return box;
  }
  if (view.rows.length) {
    box.appendChild(table(view));
  }
  if (view.summary) {
    box.appendChild(el('div', 'nbv-Note', view.summary));
  }
  return box;
}
