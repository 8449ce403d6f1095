/**
 * The agent console page: one self-contained document (no build step, nothing fetched from
 * elsewhere). Mobile first; the same layout widens into two columns on a laptop.
 */
export const CONSOLE_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Agent console · numguard</title>
<style>
  :root { --ink:#17212b; --muted:#5f6b7a; --line:#e3e8ef; --bg:#f4f6f9; --card:#fff; --brand:#1463ff; --ok:#12805c; --bad:#c62d3c; --warn:#a36100; }
  * { box-sizing: border-box; }
  body { margin:0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", "PingFang SC", "Microsoft YaHei", sans-serif; color:var(--ink); background:var(--bg); }
  header { display:flex; align-items:center; justify-content:space-between; gap:12px; padding:14px 18px; background:var(--card); border-bottom:1px solid var(--line); }
  header h1 { font-size:18px; margin:0; white-space:nowrap; }
  header h1 span { color:var(--brand); }
  #who { font-size:14px; color:var(--muted); display:flex; gap:10px; align-items:center; min-width:0; }
  #who .agent { display:flex; flex-wrap:wrap; justify-content:flex-end; column-gap:6px; line-height:1.3; text-align:right; }
  #agent-name { color:var(--ink); font-weight:600; }
  main { max-width:1040px; margin:0 auto; padding:16px; display:grid; gap:16px; }
  @media (min-width: 860px) { main.signed-in { grid-template-columns: 1.1fr 0.9fr; align-items:start; } }
  .card { background:var(--card); border:1px solid var(--line); border-radius:14px; padding:18px; box-shadow:0 1px 2px rgba(16,24,40,.04); }
  .card h2 { font-size:16px; margin:0 0 12px; }
  label { display:block; font-size:14px; color:var(--muted); margin:10px 0 4px; }
  input { width:100%; font-size:18px; padding:12px 14px; border:1px solid #c9d2de; border-radius:10px; background:#fff; color:var(--ink); }
  input:focus { outline:3px solid rgba(20,99,255,.2); border-color:var(--brand); }
  button { font:inherit; cursor:pointer; border:0; border-radius:10px; padding:12px 18px; white-space:nowrap; }
  button:disabled { opacity:.5; cursor:not-allowed; }
  .primary { background:var(--brand); color:#fff; font-weight:600; }
  .big { width:100%; font-size:20px; padding:16px; margin-top:16px; }
  .danger { background:var(--bad); color:#fff; font-weight:600; }
  .link { background:none; color:var(--brand); padding:4px 6px; }
  .secondary { background:#eaf1ff; color:var(--brand); font-weight:600; padding:10px 16px; }
  input[aria-invalid="true"] { border-color:var(--bad); outline-color:rgba(198,45,60,.2); }
  .error { color:var(--bad); min-height:1.5em; margin:8px 0 0; font-size:15px; }
  ol.steps { list-style:none; padding:0; margin:8px 0 0; }
  ol.steps li { display:flex; align-items:center; gap:12px; padding:10px 0; color:var(--muted); border-bottom:1px dashed var(--line); }
  ol.steps li:last-child { border-bottom:0; }
  ol.steps li::before { content:""; width:14px; height:14px; border-radius:50%; border:2px solid #c9d2de; flex:none; }
  ol.steps li.active { color:var(--ink); font-weight:600; }
  ol.steps li.active::before { border-color:var(--brand); background:rgba(20,99,255,.15); animation:pulse 1.2s infinite; }
  ol.steps li.done { color:var(--ink); }
  ol.steps li.done::before { border-color:var(--ok); background:var(--ok); }
  ol.steps li.failed::before { border-color:var(--bad); background:var(--bad); }
  @keyframes pulse { 50% { box-shadow:0 0 0 6px rgba(20,99,255,.12); } }
  .outcome { font-size:20px; font-weight:700; margin:12px 0 0; }
  .outcome.good { color:var(--ok); } .outcome.bad { color:var(--bad); } .outcome.meh { color:var(--warn); }
  #timer { font-variant-numeric: tabular-nums; color:var(--muted); }
  ul.recent { list-style:none; margin:0; padding:0; }
  ul.recent li { display:flex; justify-content:space-between; align-items:center; gap:12px; padding:10px 0; border-bottom:1px solid var(--line); font-size:15px; }
  ul.recent .who { font-weight:600; overflow-wrap:anywhere; }
  ul.recent li:last-child { border-bottom:0; }
  .muted { color:var(--muted); font-size:14px; }
  .hidden { display:none !important; }
</style>
</head>
<body>
<header>
  <h1><span>●</span> Agent console</h1>
  <div id="who" class="hidden"><span class="agent"><span id="agent-name"></span><span id="agent-number"></span></span><button class="link" id="sign-out" type="button">Sign out</button></div>
</header>
<main id="main">
  <section class="card" id="sign-in-card">
    <h2>Sign in</h2>
    <form id="sign-in">
      <label for="token">Agent token</label>
      <input id="token" name="token" type="password" autocomplete="off" placeholder="agt_…" required>
      <button class="primary big" type="submit">Sign in</button>
      <p class="error" id="sign-in-error" role="alert"></p>
    </form>
  </section>

  <section class="card hidden" id="call-card">
    <h2>Call a customer</h2>
    <form id="call-form">
      <label for="customer">Customer number</label>
      <input id="customer" name="customer" type="tel" inputmode="tel" autocomplete="off" placeholder="138 0000 0000" required>
      <label for="order">Order (optional)</label>
      <input id="order" name="order" type="text" autocomplete="off" placeholder="order number">
      <button class="primary big" id="call" type="submit">Call</button>
      <p class="error" id="call-error" role="alert"></p>
    </form>
    <div id="progress" class="hidden" aria-live="polite">
      <h2>Call <span id="timer"></span></h2>
      <ol class="steps">
        <li data-step="callingYou">Calling you</li>
        <li data-step="youAnswered">You answered</li>
        <li data-step="callingCustomer">Calling customer</li>
        <li data-step="connected">Connected</li>
        <li data-step="ended">Ended</li>
      </ol>
      <p class="outcome" id="outcome"></p>
      <button class="danger big" id="hang-up" type="button">Hang up</button>
    </div>
  </section>

  <section class="card hidden" id="recent-card">
    <h2>Recent orders</h2>
    <ul class="recent" id="recent"></ul>
    <p class="muted" id="recent-empty">Calls you place appear here; call a customer again from the list.</p>
  </section>
</main>
<script>
(() => {
  const $ = (id) => document.getElementById(id);
  const LABELS = {
    connected: ['Connected', 'good'], cancelled: ['Cancelled', 'meh'],
    a_busy: ['Your line was busy', 'bad'], a_no_answer: ['You did not answer', 'bad'], a_rejected: ['You declined the call', 'bad'],
    b_busy: ['Customer busy', 'bad'], b_no_answer: ['Customer did not answer', 'bad'], b_rejected: ['Customer declined', 'bad'],
    failed: ['Call failed', 'bad'], rate_limited: ['Too many calls, try again later', 'bad'],
    unbound: ['Number not bound', 'bad'], restricted: ['Call not allowed', 'bad'], blacklisted: ['Number blocked', 'bad'],
  };
  const STEPS = ['callingYou', 'youAnswered', 'callingCustomer', 'connected', 'ended'];
  let current = null;      // the call on screen: { id, steps, result, talkSeconds, connectedAt, hungUp }
  let events = null;       // the EventSource while signed in
  let signedIn = false;
  let tick = null;
  // Progress that arrived before the call it belongs to was on screen (the push can beat the reply).
  const early = new Map();

  const api = async (method, path, body) => {
    const res = await fetch('/console/api' + path, {
      method, credentials: 'same-origin',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = res.status === 204 ? null : await res.json().catch(() => null);
    if (!res.ok) {
      const err = new Error((data && data.error && data.error.message) || ('HTTP ' + res.status));
      err.status = res.status; err.code = data && data.error && data.error.code; err.field = data && data.error && data.error.field;
      throw err;
    }
    return data;
  };
  const fmt = (s) => Math.floor(s / 60) + ':' + String(Math.floor(s % 60)).padStart(2, '0');
  const label = (r) => (LABELS[r] || [String(r).replace(/_/g, ' '), 'meh']);
  const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

  // Signed out by the server (session expired, idle, revoked, or signed out elsewhere): say so.
  function ended(err) {
    if (err.status !== 401) return false;
    const wasIn = signedIn;
    show(false);
    if (wasIn || err.code === 'session_ended') $('sign-in-error').textContent = 'Your session has ended. Sign in again.';
    return true;
  }

  function show(isSignedIn, agent) {
    signedIn = isSignedIn;
    $('sign-in-card').classList.toggle('hidden', isSignedIn);
    $('call-card').classList.toggle('hidden', !isSignedIn);
    $('recent-card').classList.toggle('hidden', !isSignedIn);
    $('who').classList.toggle('hidden', !isSignedIn);
    $('main').classList.toggle('signed-in', isSignedIn);
    if (agent) { $('agent-name').textContent = agent.name; $('agent-number').textContent = agent.agentNumber; }
    if (isSignedIn) { listen(); recent(); $('customer').focus(); return; }
    if (events) { events.close(); events = null; }
    clearInterval(tick); tick = null; current = null; render();
    $('token').focus();
  }

  function render() {
    const c = current;
    $('progress').classList.toggle('hidden', !c);
    $('progress').dataset.callId = c ? c.id : '';
    const ended = Boolean(c && c.result);
    $('call').disabled = Boolean(c) && !ended;
    if (!c) return;
    const firstOpen = STEPS.findIndex((s) => !(s === 'ended' ? ended : c.steps[s]));
    document.querySelectorAll('ol.steps li').forEach((li) => {
      const step = li.dataset.step;
      const done = step === 'ended' ? ended : c.steps[step];
      li.className = done ? (step === 'ended' && c.result !== 'connected' ? 'failed' : 'done') : (!ended && STEPS.indexOf(step) === firstOpen ? 'active' : '');
    });
    const out = $('outcome');
    if (ended) {
      const [text, tone] = label(c.result);
      const duration = c.talkSeconds !== null && c.talkSeconds !== undefined ? ' · ' + fmt(c.talkSeconds) : '';
      out.textContent = 'Ended — ' + text + duration + (c.hungUp && c.result === 'connected' ? ' · you hung up' : '');
      out.className = 'outcome ' + tone;
    } else { out.textContent = ''; out.className = 'outcome'; }
    $('hang-up').classList.toggle('hidden', ended);
    $('timer').textContent = c.steps.connected && !ended && c.connectedAt ? fmt((Date.now() - c.connectedAt) / 1000) : '';
  }

  // Merges what is known of the call on screen: steps only ever light up, an end is final.
  function adopt(view) {
    if (current && current.id !== view.id) return;
    const prev = current || { steps: {} };
    const steps = {};
    for (const s of STEPS.slice(0, 4)) steps[s] = Boolean(view.steps[s] || prev.steps[s]);
    const result = prev.result || view.result || null;
    current = {
      id: view.id, steps, result,
      // The end can be read (from the live call) before its CDR is written: the talk time comes with a later view.
      talkSeconds: prev.talkSeconds ?? view.talkSeconds ?? null,
      connectedAt: prev.connectedAt || (steps.connected ? Date.now() : null),
      hungUp: prev.hungUp || false,
    };
    render();
    if (result && !prev.result) recent();
    if (result && current.talkSeconds !== null) { clearInterval(tick); tick = null; }
  }

  function onProgress(e) {
    if (!current || e.callId !== current.id) {
      if (!early.has(e.callId)) early.set(e.callId, []);
      early.get(e.callId).push(e);
      if (early.size > 20) early.delete(early.keys().next().value);
      return;
    }
    const s = { ...current.steps };
    if (e.type === 'call.calling' && e.leg === 'a') s.callingYou = true;
    if (e.type === 'call.answered' && e.leg === 'a') s.callingYou = s.youAnswered = true;
    if (e.type === 'call.calling' && e.leg === 'b') s.callingYou = s.youAnswered = s.callingCustomer = true;
    if (e.type === 'call.bridged') s.callingYou = s.youAnswered = s.callingCustomer = s.connected = true;
    const done = e.type === 'call.completed';
    adopt({ id: current.id, steps: s, result: done ? e.result : null, talkSeconds: done ? e.talkSeconds : null });
  }

  function refresh() {
    if (current && (!current.result || current.talkSeconds === null)) api('GET', '/calls/' + current.id).then(adopt, () => undefined);
  }

  function listen() {
    if (events) return;
    const source = new EventSource('/console/api/events');
    events = source;
    source.addEventListener('progress', (m) => onProgress(JSON.parse(m.data)));
    // After a (re)connect the call is read again, so nothing pushed while away is missed.
    source.onopen = refresh;
    source.onerror = () => {
      if (source.readyState !== EventSource.CLOSED || events !== source) return;
      // Refused (signed out, or the server was restarting): try again unless the session is gone.
      events = null;
      api('GET', '/me').then(() => { if (signedIn) setTimeout(listen, 3000); }, ended);
    };
  }

  function follow(view) {
    current = null; adopt(view);
    for (const e of early.get(view.id) || []) onProgress(e);
    early.delete(view.id);
    clearInterval(tick);
    if (current.result) return;
    // The timer runs here; the call is read only while pushed progress is not flowing.
    let n = 0;
    tick = setInterval(() => {
      render();
      if (++n % 4 === 0 && !(events && events.readyState === EventSource.OPEN)) refresh();
    }, 500);
  }

  async function recent() {
    try {
      const { items } = await api('GET', '/recent');
      // Back on the page while a call is still on: follow it again.
      if (!current && items[0] && !items[0].result) follow(items[0]);
      const busy = Boolean(current && !current.result);
      $('recent').replaceChildren(...items.map((c) => {
        const li = document.createElement('li');
        const text = document.createElement('div');
        const main = document.createElement('div');
        main.className = 'who';
        main.textContent = (c.order ? c.order + ' · ' : '') + c.customer;
        const meta = document.createElement('div');
        meta.className = 'muted';
        meta.textContent = clock(c.createdAt) + ' · ' + (c.result ? label(c.result)[0] : 'in progress');
        text.append(main, meta);
        const again = document.createElement('button');
        again.type = 'button'; again.className = 'secondary'; again.textContent = 'Call';
        again.setAttribute('aria-label', 'Call ' + (c.order || c.customer) + ' again');
        again.disabled = busy;
        again.addEventListener('click', () => place('/calls/' + c.id + '/again', undefined));
        li.append(text, again);
        return li;
      }));
      $('recent-empty').classList.toggle('hidden', items.length > 0);
    } catch (err) { ended(err); }
  }

  function callError(err) {
    const customer = $('customer');
    const wrongNumber = err.field === 'customer';
    customer.setAttribute('aria-invalid', String(wrongNumber));
    $('call-error').textContent = wrongNumber
      ? 'That is not a phone number we can call. Use a mobile (138 0000 0000), a fixed line with area code, or +country code.'
      : err.message;
    if (wrongNumber) customer.focus();
  }

  async function place(path, body) {
    $('call-error').textContent = '';
    $('customer').setAttribute('aria-invalid', 'false');
    $('call').disabled = true;
    try {
      follow(await api('POST', path, body));
      recent();
    } catch (err) {
      $('call').disabled = false;
      if (ended(err)) return;
      callError(err);
    }
  }

  $('sign-in').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    $('sign-in-error').textContent = '';
    try {
      const { agent } = await api('POST', '/session', { token: $('token').value });
      $('token').value = '';
      show(true, agent);
    } catch (err) { $('sign-in-error').textContent = err.status === 401 ? 'That token is not valid (or has expired, or was revoked). Ask your admin for a new one.' : err.message; }
  });
  $('call-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const order = $('order').value.trim();
    place('/calls', { customer: $('customer').value, ...(order ? { order } : {}) });
  });
  $('hang-up').addEventListener('click', async () => {
    if (!current || current.result) return;
    const call = current;
    $('hang-up').disabled = true;
    call.hungUp = true;
    try { adopt(await api('POST', '/calls/' + call.id + '/hangup')); } catch (err) {
      // Ended by itself in the meantime: the pushed end shows how.
      if (err.code !== 'call_already_ended') { call.hungUp = false; if (!ended(err)) $('call-error').textContent = err.message; }
    }
    $('hang-up').disabled = false;
  });
  // Sign-out revokes the session on the server, then forgets it here.
  $('sign-out').addEventListener('click', async () => { await api('DELETE', '/session').catch(() => undefined); show(false); $('sign-in-error').textContent = ''; });

  api('GET', '/me').then(({ agent }) => show(true, agent), (err) => { if (!ended(err)) show(false); });
})();
</script>
</body>
</html>
`;
