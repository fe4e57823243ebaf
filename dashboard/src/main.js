// The dashboard's entry point: starts each panel. Every panel polls or
// streams on its own, so one failing route never blanks the others.
//
//   header + health panel  health.js  (/pipeline/status)
//   stat tiles             tiles.js, filled by stats.js and health.js
//   charts                 stats.js   (/stats/*, /events/metrics) via charts.js
//   live feed              feed.js    (/events/live) via stream.js

import './style.css';
import { byTestId } from './dom.js';
import { FeedPanel } from './feed.js';
import { HealthPanel } from './health.js';
import { startStatsPanels } from './stats.js';

const health = new HealthPanel(byTestId('panel-pipeline'));
health.start();
startStatsPanels();
new FeedPanel(byTestId('panel-feed'), () => health.currentHead()).start();
