/**
 * The Runs section: the runs table with live progress bars, Stop for a running run, Cancel
 * for a queued one, and checkboxes to pick 2 to 10 runs to compare: the comparison opens as
 * a tab of the main area (under the table where there is no main area to open it in).
 */
import { Notification } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { comparisonNode, metricsOf } from './compare';
import { button, column, el, resultNode } from './dom';
import { IResult, IRunsCompare } from './model';
import { SectionWidget } from './section';

const COMPARE_MIN = 2;
const COMPARE_MAX = 10;
/** The CLI's status cell of a queued run, `queued (position 2)` when it has a place in its queue. */
const QUEUED = /^queued(?: \(position (\d+)\))?$/;

/** `queued (2)`: the place in the queue, short enough for the sidebar's status column. */
function shortStatus(status: string): string {
  const queued = QUEUED.exec(status);
  return queued && queued[1] ? `queued (${queued[1]})` : status;
}

export class RunsSection extends SectionWidget {
  constructor(...args: ConstructorParameters<typeof SectionWidget>) {
    super(...args);
    this.comparison.id = 'nbversion-compare';
    this.comparison.addClass('nbv-Comparison');
    this.comparison.title.closable = true;
  }

  /** Runs ticked for comparison; kept across re-renders (the long poll redraws often). */
  private selected = new Set<string>();
  /** Set by the plugin: shows a widget in JupyterLab's main area. */
  openInMain: ((widget: Widget) => void) | null = null;
  private comparison = new Widget();

  protected fill(result: IResult): void {
    this.node.appendChild(this.live());
    const listed = result.view;
    if (!listed || !listed.rows.length) {
      this.node.appendChild(resultNode(result, 'no runs yet: `%mv_train --data NAME --model yolov8n.yaml`'));
      return;
    }
    const idColumn = Math.max(column(listed, /^(run|id|run id|name)$/i), 0);
    const statusColumn = column(listed, /status/i);
    const view = statusColumn < 0 ? listed : {
      ...listed,
      rows: listed.rows.map(row => row.map((cell, i) => (i === statusColumn ? shortStatus(cell) : cell)))
    };
    const shown = new Set(view.rows.map(row => row[idColumn]));
    [...this.selected].filter(id => !shown.has(id)).forEach(id => this.selected.delete(id));
    const compare = button('Compare', () => void this.compare(), 'accept',
      `Overlay the curves of ${COMPARE_MIN} to ${COMPARE_MAX} ticked runs`);
    const updateCompare = () => {
      const count = this.selected.size;
      compare.disabled = count < COMPARE_MIN || count > COMPARE_MAX;
      compare.textContent = count ? `Compare ${count}` : 'Compare';
    };
    this.node.appendChild(
      this.longTable(view, row => {
        const id = row[idColumn];
        const status = statusColumn >= 0 ? row[statusColumn] : '';
        const cell = el('span', 'nbv-RunActions');
        const tick = el('input', 'nbv-Pick');
        tick.type = 'checkbox';
        tick.title = `compare ${id}`;
        tick.checked = this.selected.has(id);
        tick.onchange = () => {
          tick.checked ? this.selected.add(id) : this.selected.delete(id);
          updateCompare();
        };
        cell.appendChild(tick);
        if (status === 'running' && this.canWrite) {
          cell.appendChild(button('Stop', () => void this.stop(id), 'reject',
            'Stop after the current batch; last.pt is kept for `runs resume`'));
        } else if (status.startsWith('queued') && this.canWrite) {
          cell.appendChild(button('Cancel', () => void this.cancel(id), 'reject',
            'Take this run out of the queue; it never starts'));
        }
        return cell;
      }, true)
    );
    updateCompare();
    this.node.appendChild(el('div', 'nbv-Form nbv-CompareBar', '', [compare]));
    if (view.summary) {
      this.node.appendChild(el('div', 'nbv-Note', view.summary));
    }
    if (!this.openInMain) {
      this.node.appendChild(this.comparison.node);
    }
  }

  private async compare(metric = ''): Promise<void> {
    const ids = [...this.selected];
    const compared = await this.model.compareRuns(ids, metric);
    if (!compared) {
      return;   // the model has notified why
    }
    this.comparison.node.replaceChildren(comparisonNode(compared, this.metricPicker(compared, ids)));
    if (this.openInMain) {
      this.comparison.title.label = `Compare ${ids.length} runs`;
      this.openInMain(this.comparison);
    }
  }

  private metricPicker(compared: IRunsCompare, ids: string[]): HTMLSelectElement {
    const picker = el('select', 'jp-mod-styled nbv-Input');
    metricsOf(compared).forEach(name => picker.appendChild(el('option', '', name)));
    picker.value = compared.metric;
    picker.onchange = () => {
      this.selected = new Set(ids);
      void this.compare(picker.value);
    };
    return picker;
  }

  private async stop(id: string): Promise<void> {
    const stopped = await this.model.stopRun(id);
    if (stopped) {
      Notification.info(stopped.view?.summary || `${id} is stopping`, { autoClose: 5000 });
    }
  }

  private async cancel(id: string): Promise<void> {
    const cancelled = await this.model.cancelRun(id);
    if (cancelled) {
      Notification.info(cancelled.view?.summary || `${id} is cancelled`, { autoClose: 5000 });
    }
  }

  /** Running runs with a progress bar, updated by the long poll without a full refresh. */
  private live(): HTMLElement {
    const box = el('div', 'nbv-Live');
    for (const run of this.model.progress.values()) {
      if (run.status !== 'running') {
        continue;
      }
      const bar = el('progress', 'nbv-Progress');
      bar.max = run.epochs || 1;
      bar.value = run.epoch || 0;
      const map = run.map === null ? '' : ` · mAP ${run.map.toFixed(3)}`;
      box.appendChild(
        el('div', 'nbv-LiveRun', '', [
          el('span', 'nbv-LiveLabel', `${run.id}: epoch ${run.epoch}/${run.epochs ?? '?'}${map}`),
          bar
        ])
      );
    }
    return box;
  }
}
