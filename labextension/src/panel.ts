/**
 * The sidebar: a JupyterLab SidePanel with one collapsible section per part of nbversion.
 * Sections only render the model; every server call goes through NbversionModel.
 */
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { refreshIcon, SidePanel, ToolbarButton } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { button, column, el, input, resultNode, table } from './dom';
import { ApiError, IResult, NbversionModel } from './model';
import { RunsSection } from './runs';
import { SectionWidget } from './section';

class StatusSection extends SectionWidget {
  // the message survives re-renders, so a refused commit does not lose what was typed
  private draft = '';

  protected fill(result: IResult): void {
    this.node.appendChild(resultNode(result));
    const message = input('Commit message', this.draft);
    message.oninput = () => (this.draft = message.value);
    const commit = button('Commit', () => void this.commit(), 'accept',
      this.canWrite ? 'Record every change in one commit' : 'viewers cannot commit');
    commit.disabled = !this.canWrite || !result.view?.rows.length;
    message.onkeydown = event => {
      if (event.key === 'Enter' && !commit.disabled) {
        void this.commit();
      }
    };
    this.node.appendChild(el('div', 'nbv-Form', '', [message, commit]));
  }

  private async commit(): Promise<void> {
    const message = this.draft.trim();
    if (!message) {
      Notification.warning('Write a commit message first.', { autoClose: 4000 });
      return;
    }
    const done = await this.model.commit(message);
    if (done) {
      this.draft = '';
      this.render();
      Notification.success(done.view?.summary || 'Committed.', { autoClose: 4000 });
    }
  }
}

class DatasetsSection extends SectionWidget {
  private details = el('div', 'nbv-Details');

  protected fill(result: IResult): void {
    const view = result.view;
    if (!view || !view.rows.length) {
      this.node.appendChild(resultNode(result, 'no datasets yet: `%mv_dataset add NAME SRC`'));
      return;
    }
    const nameColumn = Math.max(column(view, /^(name|dataset)$/i), 0);
    this.node.appendChild(
      this.longTable(view, row => button('Show', () => void this.showDataset(row[nameColumn])))
    );
    const name = input('dataset', view.rows[0][nameColumn]);
    // the previous version against the latest: the question asked most after an import
    const a = input('version A', '~1');
    const b = input('version B', 'latest');
    const diff = button('Diff', () => void this.diff(name.value, a.value, b.value));
    this.node.appendChild(el('div', 'nbv-Form nbv-Diff', '', [name, a, b, diff]));
    this.node.appendChild(this.details);
  }

  private async showDataset(name: string): Promise<void> {
    const shown = await this.model.datasetShow(name);
    this.details.replaceChildren(el('div', 'nbv-Subtitle', name), resultNode(shown));
  }

  private async diff(name: string, a: string, b: string): Promise<void> {
    if (!name || !a || !b) {
      Notification.warning('Give a dataset and two versions to compare.', { autoClose: 4000 });
      return;
    }
    const diff = await this.model.datasetDiff(name, a, b);
    this.details.replaceChildren(el('div', 'nbv-Subtitle', `${name}: ${a} → ${b}`), resultNode(diff));
  }
}

class RegistrySection extends SectionWidget {
  private stage = input('stage', 'champion');
  private outcome = el('div', 'nbv-Details');

  protected fill(result: IResult): void {
    const view = result.view;
    if (!view || !view.rows.length) {
      this.node.appendChild(resultNode(result, 'no registered versions: `%mv_register NAME --bump minor --from RUN`'));
      return;
    }
    const nameColumn = Math.max(column(view, /^(name|model|artifact)$/i), 0);
    const versionColumn = column(view, /^version$/i);
    this.node.appendChild(el('div', 'nbv-Form', '', [el('label', 'nbv-Label', 'promote to'), this.stage]));
    this.node.appendChild(
      this.longTable(view, row => {
        if (versionColumn < 0) {
          return null;
        }
        const version = row[versionColumn].replace(/^v?/, 'v');
        const ref = `${row[nameColumn]}@${version}`;
        const promote = button('Promote', () => void this.promote(ref), 'plain',
          this.canWrite ? `Promote ${ref}` : 'viewers cannot promote');
        promote.disabled = !this.canWrite;
        return promote;
      })
    );
    if (view.summary) {
      this.node.appendChild(el('div', 'nbv-Note', view.summary));
    }
    this.node.appendChild(this.outcome);
  }

  private async promote(ref: string): Promise<void> {
    const stage = this.stage.value.trim() || 'champion';
    const answer = await showDialog({
      title: 'Promote',
      body: `Promote ${ref} to ${stage}? The metric gates of rules.toml decide; the event is audited.`,
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Promote' })]
    });
    if (!answer.button.accept) {
      return;
    }
    const promoted = await this.model.promote(ref, stage);
    if (promoted) {
      // the gate results stay visible under the table
      this.outcome.replaceChildren(el('div', 'nbv-Subtitle', `${ref} → ${stage}`), resultNode(promoted));
      Notification.success(promoted.view?.summary || `${ref} is now ${stage}`, { autoClose: 5000 });
    }
  }
}

class AuditSection extends SectionWidget {
  static LATEST = 20;
  private verdict = el('div', 'nbv-Details');

  protected fill(result: IResult): void {
    this.node.appendChild(
      el('div', 'nbv-Form', '', [button('Verify', () => void this.verify(), 'plain',
        'Check the hash chain and re-check promotions against roles and rules')])
    );
    this.node.appendChild(this.verdict);
    const view = result.view;
    if (!view || !view.rows.length) {
      this.node.appendChild(resultNode(result, 'no audit entries'));
      return;
    }
    // newest first, the latest few: the full log is `nbversion audit`
    const latest = view.rows.map((_, i) => i).reverse().slice(0, AuditSection.LATEST);
    this.node.appendChild(table(view, undefined, latest));
    this.node.appendChild(el('div', 'nbv-Note', `${view.summary || `${view.rows.length} entries`}; newest first`));
  }

  private async verify(): Promise<void> {
    const verdict = await this.model.verifyAudit();
    if (!verdict) {
      return;
    }
    const ok = verdict.ok !== false;
    this.verdict.replaceChildren(resultNode(verdict));
    this.verdict.classList.toggle('nbv-mod-ok', ok);
    this.verdict.classList.toggle('nbv-mod-bad', !ok);
  }
}

/** Title and who the sidebar acts as: roles decide what the buttons may do. */
class Header extends Widget {
  private identity = el('div', 'nbv-Identity');

  constructor(private model: NbversionModel) {
    super();
    this.addClass('nbv-Header');
    this.node.append(el('h2', 'nbv-Title', 'nbversion'), this.identity);
    model.changed.connect((_, section) => section === 'whoami' && this.render(), this);
  }

  private render(): void {
    const who = this.model.results.get('whoami');
    // the mode says whether roles are proven by keys or only checked: "advisory (unsigned)"
    const mode = who && who.mode ? ` · roles ${who.mode}` : '';
    this.identity.textContent = who ? `${who.user} · ${who.role}${mode}` : '';
    this.identity.title = who ? `identity from ${who.source}` : '';
  }
}

/** `openInMain`: how the plugin shows a widget in the main area (the runs comparison). */
export function createPanel(model: NbversionModel, openInMain?: (widget: Widget) => void): SidePanel {
  const panel = new SidePanel();
  panel.id = 'nbversion-sidebar';
  panel.addClass('nbv-Panel');
  panel.title.caption = 'nbversion: datasets, runs, registry, audit';
  panel.header.addWidget(new Header(model));
  panel.toolbar.addItem(
    'refresh-all',
    new ToolbarButton({
      icon: refreshIcon,
      label: 'Refresh',
      tooltip: 'Reload every section',
      onClick: () => void model.refreshAll()
    })
  );
  panel.addWidget(new StatusSection(model, 'status', 'Status'));
  panel.addWidget(new DatasetsSection(model, 'datasets', 'Datasets'));
  const runs = new RunsSection(model, 'runs', 'Runs');
  runs.openInMain = openInMain ?? null;
  panel.addWidget(runs);
  panel.addWidget(new RegistrySection(model, 'registry', 'Registry'));
  panel.addWidget(new AuditSection(model, 'audit', 'Audit'));
  model.failed.connect((_, error: ApiError) => {
    const hint = error.hint ? ` — ${error.hint}` : '';
    Notification.error(`nbversion: ${error.message}${hint}`, { autoClose: 8000 });
  }, panel);
  return panel;
}
