/**
 * One collapsible section of the sidebar: its toolbar, its loading and unavailable states, and
 * long tables drawn a page at a time. Subclasses fill it from the model's latest result.
 */
import { refreshIcon, Toolbar, ToolbarButton } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { button, el, pickRows, table } from './dom';
import { IResult, IView, NbversionModel, Section } from './model';

/** One collapsible section; subclasses fill it from the model's latest result. */
export abstract class SectionWidget extends Widget {
  readonly toolbar = new Toolbar();

  constructor(
    protected model: NbversionModel,
    readonly section: Section,
    label: string
  ) {
    super();
    this.id = `nbversion-section-${section}`;
    this.addClass('nbv-Section');
    this.addClass(`nbv-Section-${section}`);
    this.title.label = label;
    this.toolbar.addItem(
      'refresh',
      new ToolbarButton({
        icon: refreshIcon,
        tooltip: `Refresh ${label}`,
        onClick: () => void model.refresh(section)
      })
    );
    model.changed.connect((_, changed) => {
      if (changed === section || changed === 'whoami') {
        this.render();
      }
    }, this);
    this.node.appendChild(el('div', 'nbv-Note', 'loading…'));
  }

  render(): void {
    this.node.textContent = '';
    const reason = this.model.unavailable.get(this.section);
    if (reason) {
      this.node.appendChild(el('div', 'nbv-Note', reason));
      return;
    }
    const result = this.model.results.get(this.section);
    if (result === undefined) {
      this.node.appendChild(el('div', 'nbv-Note', 'loading…'));
      return;
    }
    this.fill(result ?? {});
  }

  protected get canWrite(): boolean {
    return this.model.role !== 'viewer';
  }

  /**
   * A long list draws its first rows and a "Show all" button: the sidebar paints fast and
   * stays scrollable; the highlighted rows of the page are always drawn. The server sends
   * one page (100 runs or versions); "Show more" adds the next one.
   */
  protected longTable(
    view: IView,
    actions?: (row: string[], index: number) => Node | null,
    newestFirst = false
  ): HTMLElement {
    const box = el('div', 'nbv-LongTable');
    const rows = this.showAll
      ? pickRows(view, view.rows.length, newestFirst)
      : pickRows(view, SectionWidget.FIRST_ROWS, newestFirst);
    box.appendChild(table(view, actions, rows));
    const result = this.model.results.get(this.section);
    if (rows.length < view.rows.length) {
      box.appendChild(
        button(`Show all ${view.rows.length}`, () => {
          this.showAll = true;
          this.render();
        })
      );
    } else if (result?.next && result.total !== undefined && typeof result.next_offset === 'number') {
      const left = Math.min(result.total - result.next_offset, SectionWidget.PAGE);
      box.appendChild(
        button(`Show ${left} more of ${result.total}`, () => void this.model.more(this.section))
      );
    }
    return box;
  }

  static FIRST_ROWS = 30;
  /** The server's page (its default `limit`). */
  static PAGE = 100;
  private showAll = false;

  protected abstract fill(result: IResult): void;
}

