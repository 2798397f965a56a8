/**
 * nbversion's JupyterLab sidebar: a left-panel tab over the REST API of nbversion.server.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { LabIcon } from '@jupyterlab/ui-components';

import { NbversionModel } from './model';
import { createPanel } from './panel';

// a stack of versions: three offset sheets
const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M4 6h12v2H6v10H4z"/><path d="M8 10h12v10H8zm2 2v6h8v-6z"/>
  </g></svg>`;

export const nbversionIcon = new LabIcon({ name: 'nbversion:sidebar', svgstr: ICON_SVG });

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'nbversion-labextension:sidebar',
  description: 'Browse and act on datasets, runs, registry and audit of an nbversion workspace.',
  autoStart: true,
  optional: [ILayoutRestorer],
  activate: (app: JupyterFrontEnd, restorer: ILayoutRestorer | null) => {
    const model = new NbversionModel();
    const panel = createPanel(model, widget => {
      if (!widget.isAttached) {
        app.shell.add(widget, 'main');
      }
      app.shell.activateById(widget.id);
    });
    panel.title.icon = nbversionIcon;
    app.shell.add(panel, 'left', { rank: 250 });
    if (restorer) {
      restorer.add(panel, 'nbversion-sidebar');
    }
    // load when shown, not at JupyterLab start-up: an unopened tab costs nothing; each
    // re-opening refreshes, since kernels and the CLI change the workspace meanwhile
    let wasVisible = false;
    const load = () => {
      const visible = panel.isVisible;
      if (visible && !wasVisible) {
        // follow changes only once the sections are drawn: the first progress answer reads
        // every run record, and must not compete with the first paint for the server
        void model.refreshAll().then(() => model.followProgress());
      }
      wasVisible = visible;
    };
    // the panel's node loses its hidden class when the user opens the tab
    const observer = new MutationObserver(load);
    observer.observe(panel.node, { attributes: true, attributeFilter: ['class'] });
    void app.restored.then(load);
  }
};

export default plugin;
