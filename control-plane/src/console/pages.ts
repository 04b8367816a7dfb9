/**
 * The console's HTML: one server-rendered shell per page (navigation, headings, forms), and
 * a page script under /console/assets/ that fills it from the console API. Everything
 * interpolated here goes through `html`'s escaping; the scripts build the DOM with
 * textContent, never innerHTML, so no tenant-supplied string is ever parsed as markup.
 */

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for HTML content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** A safe fragment: only `html` tagged templates make these. */
class Html {
  constructor(readonly text: string) {}
  toString() {
    return this.text;
  }
}

/** Tagged template that escapes every interpolated value that is not already `Html`. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  values.forEach((value, i) => {
    const parts = Array.isArray(value) ? value : [value];
    out += parts.map((v) => (v instanceof Html ? v.text : escapeHtml(String(v ?? '')))).join('');
    out += strings[i + 1]!;
  });
  return new Html(out);
}

const NAV = [
  ['overview', '/console', 'Overview'],
  ['tenants', '/console/tenants', 'Tenants'],
  ['plans', '/console/plans', 'Plans'],
  ['pricing', '/console/pricing', 'Pricing'],
  ['audit', '/console/audit', 'Audit log'],
  ['export', '/console/export', 'Usage export'],
] as const;

/** A page id, naming its script and its navigation entry. */
export type PageId = (typeof NAV)[number][0] | 'tenant';

function layout(opts: { title: string; page: PageId; csrf: string; body: Html; charts?: boolean }): string {
  const active = opts.page === 'tenant' ? 'tenants' : opts.page;
  return `<!doctype html>${html`<html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="csrf-token" content="${opts.csrf}" />
      <title>${opts.title} · Lanekeeper console</title>
      <link rel="icon" href="data:," />
      <link rel="stylesheet" href="/console/assets/console.css" />
      ${opts.charts ? html`<script src="/console/assets/chart.umd.min.js" defer></script>` : ''}
      <script type="module" src="/console/assets/${opts.page}.js"></script>
    </head>
    <body>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <span class="brand">Lanekeeper</span>
        <nav aria-label="Console">
          <ul>
            ${NAV.map(
              ([id, href, label]) =>
                html`<li>
                  <a href="${href}" ${id === active ? html` aria-current="page"` : ''}>${label}</a>
                </li>`,
            )}
          </ul>
        </nav>
        <form method="post" action="/console/logout" class="signout">
          <input type="hidden" name="csrf" value="${opts.csrf}" />
          <button type="submit">Sign out</button>
        </form>
      </header>
      <main id="main" tabindex="-1">
        <h1>${opts.title}</h1>
        <p class="status" role="status" aria-live="polite" id="status"></p>
        ${opts.body}
      </main>
    </body>
  </html>`}`;
}

/** The sign-in page; the token goes in a POST body, never the URL. */
export function loginPage(error?: string): string {
  return `<!doctype html>${html`<html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <title>Sign in · Lanekeeper console</title>
      <link rel="icon" href="data:," />
      <link rel="stylesheet" href="/console/assets/console.css" />
    </head>
    <body>
      <main id="main" class="login">
        <h1>Lanekeeper console</h1>
        <form method="post" action="/console/login" autocomplete="off">
          <label for="token">Admin token</label>
          <input
            id="token"
            name="token"
            type="password"
            required
            autofocus
            ${error ? html`aria-invalid="true" aria-describedby="token-error"` : ''}
          />
          ${error ? html`<p class="field-error" id="token-error" role="alert">${error}</p>` : ''}
          <button type="submit">Sign in</button>
        </form>
      </main>
    </body>
  </html>`}`;
}

const field = (name: string, label: string, input: Html) =>
  html`<div class="field">
    <label for="${name}">${label}</label>${input}
    <p class="field-error" id="${name}-error" data-error-for="${name}" hidden></p>
  </div>`;

const text = (name: string, label: string, extra = html``) =>
  field(name, label, html`<input id="${name}" name="${name}" ${extra} />`);
const number = (name: string, label: string) =>
  field(name, label, html`<input id="${name}" name="${name}" type="number" min="1" step="any" />`);

const BODIES: Record<Exclude<PageId, 'tenant'>, { title: string; charts?: boolean; body: Html }> = {
  overview: {
    title: 'Overview',
    charts: true,
    body: html` <section aria-labelledby="totals-h">
        <h2 id="totals-h">Totals</h2>
        <div class="cards" id="totals"></div>
      </section>
      <section aria-labelledby="chart-h">
        <h2 id="chart-h">Cost per hour by model, last 24 hours (USD, UTC hours)</h2>
        <div class="chart">
          <canvas id="cost-chart" role="img" aria-label="Cost per hour, stacked by model"></canvas>
        </div>
        <details>
          <summary>The chart's numbers</summary>
          <div class="scroll" id="cost-table"></div>
        </details>
      </section>
      <section aria-labelledby="top-h">
        <h2 id="top-h">Top tenants by cost, last 30 days</h2>
        <div class="scroll" id="top"></div>
      </section>`,
  },
  tenants: {
    title: 'Tenants',
    body: html` <form id="search" role="search" class="inline">
        <label for="q">Search id or plan</label><input id="q" name="q" type="search" />
        <button type="submit">Search</button>
      </form>
      <div class="scroll" id="list"></div>
      <nav aria-label="Pages" class="pager">
        <button type="button" id="first" hidden>First page</button
        ><button type="button" id="next" hidden>Next page</button>
      </nav>
      <section aria-labelledby="new-h">
        <h2 id="new-h">New tenant</h2>
        <form id="create" class="grid" novalidate>
          ${text('id', 'Tenant id', html`required aria-describedby="id-error"`)}
          ${field('plan', 'Plan', html`<select id="plan" name="plan" required aria-describedby="plan-error"></select>`)}
          <p class="field-error" data-error-for="" hidden></p>
          <div><button type="submit">Create tenant</button></div>
        </form>
      </section>`,
  },
  plans: {
    title: 'Plans',
    body: html` <div class="scroll" id="list"></div>
      <section aria-labelledby="edit-h">
        <h2 id="edit-h">New plan</h2>
        <form id="plan-form" class="grid" novalidate data-other-fields="rest">
          ${text('id', 'Plan id', html`required aria-describedby="id-error"`)}
          ${text('models.default', 'Default model', html`required aria-describedby="models.default-error"`)}
          ${number('rate_limits.requests_per_minute', 'Requests per minute')}
          ${number('rate_limits.tokens_per_hour', 'Tokens per hour')}
          ${number('rate_limits.max_concurrent', 'Concurrent requests')}
          ${number('rate_limits.budget_usd_per_day', 'Budget per day (USD)')}
          ${number('rate_limits.budget_usd_per_month', 'Budget per month (USD)')}
          ${number('max_output_tokens', 'Max output tokens')}
          ${field('rest', 'Other fields (JSON: other model aliases, features, allow_paths, …)', html`<textarea id="rest" name="rest" rows="5" spellcheck="false" aria-describedby="rest-error"></textarea>`)}
          <p class="field-error" data-error-for="" hidden></p>
          <div>
            <button type="submit" id="save">Create plan</button>
            <button type="button" id="new-plan">New plan</button>
          </div>
        </form>
      </section>`,
  },
  pricing: {
    title: 'Pricing',
    body: html` <div id="versions"></div>
      <section aria-labelledby="add-h">
        <h2 id="add-h">Add a price version</h2>
        <p>
          USD per million tokens. A version lists every priced model and replaces the one before from its
          effective time on.
        </p>
        <form id="price-form" novalidate>
          ${field('effective_from', 'Effective from (UTC)', html`<input id="effective_from" name="effective_from" type="datetime-local" required aria-describedby="effective_from-error" />`)}
          <div class="scroll">
            <table class="prices">
              <caption>
                Prices
              </caption>
              <thead>
                <tr>
                  <th scope="col">Model</th>
                  <th scope="col">Input</th>
                  <th scope="col">Output</th>
                  <th scope="col">Cached input</th>
                  <th scope="col">Cache write</th>
                </tr>
              </thead>
              <tbody id="rows"></tbody>
            </table>
          </div>
          <p class="field-error" data-error-for="" hidden></p>
          <div>
            <button type="button" id="add-row">Add a model</button> <button type="submit">Add version</button>
          </div>
        </form>
      </section>`,
  },
  audit: {
    title: 'Audit log',
    body: html` <form id="filter" class="inline">
        <label for="tenant">Tenant</label><input id="tenant" name="tenant" /> <label for="actor">Actor</label
        ><input id="actor" name="actor" />
        <button type="submit">Filter</button>
      </form>
      <p class="field-error" data-error-for="" hidden></p>
      <div class="scroll" id="list"></div>
      <nav aria-label="Pages" class="pager">
        <button type="button" id="first" hidden>First page</button
        ><button type="button" id="next" hidden>Older entries</button>
      </nav>`,
  },
  export: {
    title: 'Usage export',
    body: html` <p>
        One CSV line per UTC day, model and price version, from the usage ledger: the numbers an invoice is
        built from. Both dates are included.
      </p>
      <form id="export-form" class="grid" method="get" action="/console/api/export.csv" novalidate>
        ${text('tenant', 'Tenant id', html`required aria-describedby="tenant-error"`)}
        ${field('from', 'From (UTC day)', html`<input id="from" name="from" type="date" required aria-describedby="from-error" />`)}
        ${field('to', 'To (UTC day, included)', html`<input id="to" name="to" type="date" required aria-describedby="to-error" />`)}
        <p class="field-error" data-error-for="" hidden></p>
        <div><button type="submit">Download CSV</button></div>
      </form>`,
  },
};

/** One of the list pages. */
export function consolePage(page: Exclude<PageId, 'tenant'>, csrf: string): string {
  return layout({ ...BODIES[page], page, csrf });
}

/** A tenant's page; `id` has been checked against the tenant id pattern. */
export function tenantPage(id: string, csrf: string): string {
  const body = html` <div id="tenant" data-tenant="${id}">
    <section aria-labelledby="about-h">
      <h2 id="about-h">Tenant</h2>
      <dl class="facts" id="facts"></dl>
      <form id="plan-form" class="inline" novalidate>
        <label for="plan">Plan</label
        ><select id="plan" name="plan" aria-describedby="plan-error"></select>
        <button type="submit">Change plan</button>
        <p class="field-error" id="plan-error" data-error-for="plan" hidden></p>
      </form>
      <p><button type="button" id="toggle-status"></button></p>
    </section>
    <section aria-labelledby="usage-h">
      <h2 id="usage-h">Usage by model</h2>
      <form class="inline" id="metric-form">
        <label for="metric">Show</label>
        <select id="metric">
          <option value="cost_usd">Cost (USD)</option>
          <option value="tokens">Tokens</option>
          <option value="requests">Requests</option>
        </select>
      </form>
      <h3>Per hour, last 24 hours (UTC)</h3>
      <div class="chart">
        <canvas id="hour-chart" role="img" aria-label="Usage per hour by model"></canvas>
      </div>
      <h3>Per day, last 30 days (UTC days)</h3>
      <div class="chart"><canvas id="day-chart" role="img" aria-label="Usage per day by model"></canvas></div>
      <div class="scroll" id="usage-table"></div>
    </section>
    <section aria-labelledby="keys-h">
      <h2 id="keys-h">API keys</h2>
      <div id="new-key" class="notice" hidden tabindex="-1"></div>
      <div class="scroll" id="keys"></div>
      <p><button type="button" id="create-key">Create a key</button></p>
    </section>
    <section aria-labelledby="erase-h" class="danger">
      <h2 id="erase-h">Erase this tenant</h2>
      <p>
        Erasure deletes the tenant, its keys, counters, usage events and vectors everywhere; only the audit
        record remains. It cannot be undone.
      </p>
      <form id="erase-form" novalidate>
        <label for="confirm">Type the tenant id <strong>${id}</strong> to confirm</label>
        <input id="confirm" name="confirm" autocomplete="off" aria-describedby="confirm-error" />
        <p class="field-error" id="confirm-error" data-error-for="confirm" hidden></p>
        <button type="submit" id="erase" disabled>Erase tenant</button>
      </form>
      <div id="erasure-report" hidden tabindex="-1">
        <h3>Erasure report</h3>
        <pre id="report"></pre>
      </div>
    </section>
  </div>`;
  return layout({ title: `Tenant ${id}`, page: 'tenant', csrf, body, charts: true });
}
