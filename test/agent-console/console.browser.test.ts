/**
 * The agent console in a real headless Chromium (Debian's, driven by playwright-core) against
 * the app wired to the switch simulator. Screenshots land in test-artifacts/.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { AgentTokenStore } from '../../src/stores/agent-tokens';
import { startTestSystem, type TestSystem } from '../support/system';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve(__dirname, '../../test-artifacts');
const AGENT = '13800060001';

jest.setTimeout(60_000);
describe('agent console in Chromium', () => {
  let sys: TestSystem;
  let browser: Browser;
  let page: Page;
  let url: string;
  let token: string;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: install Debian's chromium (.ci/run does) or set CHROMIUM_PATH`);
    mkdirSync(ARTIFACTS, { recursive: true });
    // A customer who does not answer rings for 24 s (120 s at the simulator's time scale): time enough to hang up.
    sys = await startTestSystem({ timeScale: 0.2, env: { RING_TIMEOUT_B_SECONDS: '120' } });
    token = (await new AgentTokenStore(sys.app.pool).create(sys.tenantId, { name: 'Wang Fang', agentNumber: AGENT })).token;
    const addr = sys.app.http.server.address();
    url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/console`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  });
  afterAll(async () => {
    await browser?.close();
    await sys?.stop();
  });

  const outcome = () => page.locator('#outcome');
  const step = (name: string) => page.locator(`ol.steps li[data-step="${name}"]`);
  const callOnScreen = async (): Promise<string> => (await page.locator('#progress').getAttribute('data-call-id')) ?? '';

  async function call(customer: string, order?: string): Promise<void> {
    await page.fill('#customer', customer);
    await page.fill('#order', order ?? '');
    await page.click('#call');
  }

  it('refuses a wrong token, then signs the agent in', async () => {
    await page.goto(url);
    await page.fill('#token', 'agt_not-a-real-token');
    await page.click('#sign-in button[type=submit]');
    await page.locator('#sign-in-error').getByText('That token is not valid').waitFor();
    expect(await page.locator('#call-card').isVisible()).toBe(false);
    await page.fill('#token', token);
    await page.click('#sign-in button[type=submit]');
    await page.locator('#call-card').waitFor({ state: 'visible' });
    expect(await page.locator('#agent-name').textContent()).toBe('Wang Fang');
    expect(await page.locator('#agent-number').textContent()).toBe('138****0001');
  });

  it('a number that cannot be called is refused inline, naming what to type', async () => {
    await call('12345');
    await page.locator('#call-error').getByText('That is not a phone number we can call').waitFor();
    expect(await page.locator('#customer').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#progress').isVisible()).toBe(false);
  });

  it('a call that connects: every step in turn, then Ended — Connected with the duration', async () => {
    sys.sim.setPhone(AGENT, { answer: 'answer', ringMs: 2000 });
    sys.sim.setPhone('13900060001', { answer: 'answer', ringMs: 2000, hangupAfterMs: 20_000 });
    await call('13900060001', 'SO-2024-001');
    await outcome().getByText('Ended — Connected').waitFor({ timeout: 20_000 });
    for (const s of ['callingYou', 'youAnswered', 'callingCustomer', 'connected']) expect(await step(s).getAttribute('class')).toBe('done');
    expect(await outcome().textContent()).toMatch(/^Ended — Connected · \d+:\d\d$/);
    expect(await page.locator('#customer').getAttribute('aria-invalid')).toBe('false');
    const first = page.locator('#recent li').first();
    await first.getByText('SO-2024-001 · 139****0001').waitFor();
    await first.getByText(/^\d\d?:\d\d\b.* · Connected$/).waitFor(); // the time, in the browser's locale
  });

  it('a busy customer: Ended — Customer busy, and the connected step never lights', async () => {
    sys.sim.setPhone('13900060002', { answer: 'busy' });
    await call('13900060002');
    await outcome().getByText('Ended — Customer busy').waitFor({ timeout: 20_000 });
    expect(await step('connected').getAttribute('class')).toBe('');
    expect(await step('ended').getAttribute('class')).toBe('failed');
    expect((await sys.waitForCall(await callOnScreen())).result).toBe('b_busy');
  });

  it('Hang up while the customer still rings: Ended — Cancelled', async () => {
    sys.sim.setPhone('13900060004', { answer: 'no-answer' });
    await call('13900060004', 'SO-2024-004');
    await page.locator('ol.steps li[data-step="callingCustomer"].done').waitFor({ timeout: 20_000 });
    await page.click('#hang-up');
    await outcome().getByText('Ended — Cancelled').waitFor({ timeout: 20_000 });
    expect(await step('connected').getAttribute('class')).toBe('');
    expect(await sys.waitForCall(await callOnScreen())).toMatchObject({ result: 'cancelled', hangupSide: 'platform' });
  });

  it('Hang up while connected, after a reload of the page; screenshots on a laptop and a phone', async () => {
    sys.sim.setPhone('13900060003', { answer: 'answer', hangupAfterMs: 3_600_000 });
    await call('13900060003', 'SO-2024-003');
    await page.locator('ol.steps li[data-step="connected"].done').waitFor({ timeout: 20_000 });
    const id = await callOnScreen();
    // Back on the page (reload, another tab): the call in progress is picked up again.
    await page.reload();
    await page.locator(`#progress[data-call-id="${id}"] ol.steps li[data-step="connected"].done`).waitFor();
    await page.screenshot({ path: path.join(ARTIFACTS, 'console-laptop.png'), fullPage: true });
    await page.click('#hang-up');
    // The talk happened, so the result stays Connected (and billed); the platform ended it.
    await outcome().getByText(/^Ended — Connected · \d+:\d\d · you hung up$/).waitFor({ timeout: 20_000 });
    expect(await page.locator('#hang-up').isVisible()).toBe(false);
    expect(await sys.waitForCall(id)).toMatchObject({ result: 'connected', hangupSide: 'platform', userData: 'SO-2024-003' });

    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: path.join(ARTIFACTS, 'console-phone.png'), fullPage: true });
    for (const shot of ['console-laptop.png', 'console-phone.png']) expect(statSync(path.join(ARTIFACTS, shot)).size).toBeGreaterThan(10_000);
  });

  it('the browser holds only a session id; Sign out ends the session for good', async () => {
    const session = (await page.context().cookies()).find((c) => c.name === 'ng_agent')!;
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/console', secure: false });
    expect(session.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(session.value).not.toContain(token.slice(4));
    await page.click('#sign-out');
    await page.locator('#sign-in-card').waitFor({ state: 'visible' });
    expect(await page.locator('#sign-in-error').textContent()).toBe('');
    // The old session id, put back (a copied cookie): the page is told the session has ended.
    await page.context().addCookies([session]);
    await page.reload();
    await page.locator('#sign-in-error').getByText('Your session has ended. Sign in again.').waitFor();
    expect(await page.locator('#call-card').isVisible()).toBe(false);
  });
});
