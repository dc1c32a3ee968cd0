// The web console in a real browser: Debian's Chromium driven by playwright-core, both from
// outside this project. Run by tests/suite/console_browser.rs against a gateway on the shipped
// proxy.yaml:
//
//   node console.cjs <base URL> <admin password> <screenshot folder> <authorization server>
//
// with MCPS_TEST_CHROMIUM (the browser) and MCPS_TEST_AXE (axe-core's axe.min.js) set and
// playwright-core on NODE_PATH. Every step prints a line; the first failure exits 1 with why.
// Throughout: no request may leave the gateway's host (but for the authorization server of
// the OAuth upstream `remote`, on this machine too), and no page may log an error. The
// gateway's security.spawn_allowlist must admit `mcps` (the upstream the test adds runs the
// gateway's own demo server).

const { chromium } = require("playwright-core");
const fs = require("fs");
const path = require("path");

const [base, password, shots, authorizationServer] = process.argv.slice(2);
const axeSource = fs.readFileSync(process.env.MCPS_TEST_AXE, "utf8");

function check(ok, what) {
  if (!ok) throw new Error(what);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.MCPS_TEST_CHROMIUM,
    // CI runs as root, where Chromium's sandbox cannot start.
    args: ["--no-sandbox"],
  });
  const context = await browser.newContext({
    locale: "en-US",
    viewport: { width: 1366, height: 768 },
  });
  const hosts = [new URL(base).host, new URL(authorizationServer).host];
  const outside = [];
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (hosts.includes(url.host)) return route.continue();
    outside.push(url.href);
    return route.abort();
  });
  const page = await context.newPage();
  const errors = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`console: ${message.text()}`);
  });
  page.on("pageerror", (error) => errors.push(`page: ${error.message}`));
  page.on("requestfailed", (request) =>
    errors.push(`request failed: ${request.url()} ${request.failure()?.errorText}`),
  );
  const step = (what) => console.log(`step: ${what}`);
  fs.mkdirSync(shots, { recursive: true });
  const shoot = (name) =>
    page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  const violations = {};
  // axe-core in the page (evaluated, as the page's policy admits no injected script): the
  // serious and critical violations of WCAG 2 A and AA rules.
  async function accessible(name) {
    const found = await page.evaluate(async (source) => {
      if (!window.axe) (0, eval)(source);
      const result = await window.axe.run(document, {
        runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] },
      });
      return result.violations
        .filter((v) => v.impact === "serious" || v.impact === "critical")
        .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
    }, axeSource);
    violations[name] = found;
    console.log(`axe ${name}: ${found.length ? found.join("; ") : "no serious or critical violation"}`);
  }

  step("the root leads to the sign-in form");
  await page.goto(`${base}/`);
  check(page.url().endsWith("/ui/login"), `at ${page.url()}`);
  check((await page.locator('input[name="username"]').count()) === 1, "a username input");
  check((await page.locator('input[name="password"]').count()) === 1, "a password input");
  await accessible("login");
  await shoot("login");

  step("a wrong password is refused on the form");
  await page.fill('input[name="username"]', "admin");
  await page.fill('input[name="password"]', "not the password");
  await page.press('input[name="password"]', "Enter");
  await page.waitForSelector('[role="alert"]');
  check(page.url().endsWith("/ui/login"), "still on the form");

  step("signing in, by keyboard");
  await page.fill('input[name="password"]', password);
  await page.press('input[name="password"]', "Enter");
  await page.waitForURL(`${base}/ui`);

  step("both shipped upstreams become ready");
  for (const name of ["everything", "hello"]) {
    await page.waitForSelector(`tr[data-upstream="${name}"][data-state="ready"]`, { timeout: 60000 });
  }
  await accessible("overview");
  await shoot("overview");

  step("the overview refreshes itself");
  const before = await page.locator("#live dd").nth(1).textContent();
  await page.waitForFunction(
    (earlier) => document.querySelectorAll("#live dd")[1]?.textContent !== earlier,
    before,
    { timeout: 10000 },
  );

  step("the page in Chinese");
  await page.click('a[lang="zh-CN"]');
  await page.waitForSelector('html[lang="zh-CN"]');
  check((await page.locator("h1").textContent()).includes("概览"), "a Chinese heading");
  await accessible("overview-zh");
  await shoot("overview-zh");
  await page.click('a[lang="en"]');
  await page.waitForSelector('html[lang="en"]');

  step("adding a stdio upstream through the form");
  await page.click('nav a[href="/ui/upstreams"]');
  await page.waitForURL(`${base}/ui/upstreams`);
  await page.fill("#name", "greeter");
  await page.fill("#command", "mcps");
  await page.fill("#args", "hello");
  await page.click('form.entry button[type="submit"]');
  await page.waitForURL(/\/ui\/upstreams\?done=greeter/);
  await page.waitForSelector('#state-greeter[data-state="ready"]', { timeout: 30000 });
  await accessible("upstreams");
  await shoot("upstreams");

  step("editing the added upstream on its own form");
  await page.click('a[aria-label="Edit greeter"]');
  await page.waitForURL(/\/ui\/upstreams\/greeter\/edit/);
  check((await page.inputValue("#args")) === "hello", "the form holds the entry");
  await page.fill("#env", "GREETING_STYLE=plain");
  await page.fill("#more", "call_timeout_secs: 20");
  await accessible("upstream-edit");
  await shoot("upstream-edit");
  await page.click('form.entry button[type="submit"]');
  await page.waitForURL(/\/ui\/upstreams\?done=greeter/);
  await page.waitForSelector('#state-greeter[data-state="ready"]', { timeout: 30000 });
  await page.click('a[aria-label="Edit greeter"]');
  check((await page.inputValue("#env")) === "GREETING_STYLE=********", "the saved entry, its value hidden");
  check((await page.inputValue("#more")).includes("call_timeout_secs: 20"), "the saved settings");
  await page.click('a:has-text("Cancel")');

  step("signing the gateway in to the OAuth upstream, through its authorization server");
  await page.waitForSelector('#state-remote[data-state="needs_authorization"]');
  await page.click('button[aria-label="Authorize remote"]');
  await page.waitForURL(/\/oauth\/callback/);
  check((await page.textContent("body")).includes("signed in to remote"), "the callback's page");
  await page.click('a:has-text("Back to the console")');
  await page.waitForSelector('#state-remote[data-state="ready"]', { timeout: 30000 });

  step("a refused upstream is said on the form, which keeps what was typed");
  await page.fill("#name", "shell");
  await page.fill("#command", "bash");
  await page.click('form.entry button[type="submit"]');
  await page.waitForSelector('[role="alert"]');
  check((await page.locator('[role="alert"]').textContent()).includes("spawn_allowlist"), "the allowlist is named");
  check((await page.inputValue("#command")) === "bash", "the form kept its fields");

  step("finding a tool and calling it from its form");
  await page.click('nav a[href="/ui/tools"]');
  await page.fill("#q", "greet");
  await page.press("#q", "Enter");
  await page.waitForSelector('tr[data-tool="greeter__greet"]');
  await accessible("tools");
  await shoot("tools");
  await page.click('tr[data-tool="greeter__greet"] a');
  await page.waitForURL(`${base}/ui/tools/greeter__greet`);
  await page.fill('input[name="arg.name"]', "console");
  await page.click('form.entry button[type="submit"]');
  await page.waitForSelector(".outcome pre.block");
  check((await page.locator(".outcome pre.block").first().textContent()) === "Hello, console!", "the tool's answer");
  await accessible("tool");
  await shoot("tool");

  step("the call is in the history");
  await page.click('nav a[href="/ui/calls"]');
  for (let tries = 0; ; tries++) {
    if ((await page.locator('tr[data-tool="greeter__greet"][data-outcome="ok"]').count()) > 0) break;
    check(tries < 20, "the call reached the history");
    await page.waitForTimeout(250);
    await page.reload();
  }
  await accessible("calls");
  await shoot("calls");
  await page.click('tr[data-tool="greeter__greet"] a');
  await page.waitForSelector("dl.record");
  check((await page.locator("dl.record").textContent()).includes("admin"), "the call's user");
  await accessible("call");
  await shoot("call");

  step("making an API key bound to a virtual server, and revoking it");
  await page.click('nav a[href="/ui/keys"]');
  await page.fill("#key-name", "desktop");
  await page.selectOption("#key-server", "echo-only");
  await page.click('form[action="/ui/keys"] button');
  await page.waitForSelector("#new-key");
  const key = (await page.locator("#new-key").textContent()).trim();
  const me = await fetch(`${base}/api/v1/auth/me`, { headers: { authorization: `Bearer ${key}` } });
  check(me.status === 200, `the new key works (HTTP ${me.status})`);
  await accessible("keys");
  await page.click('tr[data-key="desktop"] form button');
  await page.waitForSelector('tr[data-key="desktop"] .state.disabled');
  const revoked = await fetch(`${base}/api/v1/auth/me`, { headers: { authorization: `Bearer ${key}` } });
  check(revoked.status === 401, `the revoked key is refused (HTTP ${revoked.status})`);
  // After the revocation: the page no longer shows the key.
  await shoot("keys");

  step("the config page shows the running configuration, and a reload what changed");
  await page.click('nav a[href="/ui/config"]');
  await page.waitForSelector("pre.config");
  check((await page.locator("pre.config").textContent()).includes("everything:"), "the shipped upstreams");
  await page.click('form[action="/ui/config/reload"] button');
  await page.waitForSelector('.reloaded [role="status"]');
  check((await page.locator(".reloaded").textContent()).includes("nothing changed"), "an unchanged file");
  await accessible("config");
  await shoot("config");

  step("the logs page shows the gateway's lines");
  await page.click('nav a[href="/ui/logs"]');
  await page.waitForSelector("#log");
  check((await page.locator("#log").textContent()).includes("logged in"), "the sign-in's line");
  await accessible("logs");
  // Filtered to the console's own doings: the screenshot shows no line naming a path.
  await page.fill("#q", "admin::auth");
  await page.press("#q", "Enter");
  await page.waitForURL(/q=admin/);
  check(!(await page.locator("#log").textContent()).includes("upstream="), "only the matching lines");
  await shoot("logs");

  step("disabling the upstream");
  await page.click('nav a[href="/ui/upstreams"]');
  await page.click('form[action="/ui/upstreams/greeter/disable"] button');
  await page.waitForSelector('#state-greeter[data-state="disabled"]', { timeout: 15000 });
  await page.click('form[action="/ui/upstreams/greeter/enable"] button');
  await page.waitForSelector('#state-greeter[data-state="ready"]', { timeout: 30000 });
  await page.click('form[action="/ui/upstreams/greeter/delete"] button');
  await page.waitForURL(/done=greeter/);
  check((await page.locator('tr[data-upstream="greeter"]').count()) === 0, "deleted");

  step("signing out");
  await page.click('form[action="/ui/logout"] button');
  await page.waitForURL(`${base}/ui/login`);
  await page.goto(`${base}/ui`);
  check(page.url().endsWith("/ui/login"), "signed out for good");

  await browser.close();
  check(outside.length === 0, `requests left the gateway: ${outside.join(", ")}`);
  check(errors.length === 0, `errors: ${errors.join("; ")}`);
  const bad = Object.entries(violations).filter(([, found]) => found.length);
  check(bad.length === 0, `accessibility: ${JSON.stringify(Object.fromEntries(bad))}`);
  console.log("the console works in Chromium");
}

main().catch((error) => {
  console.error(`FAILED: ${error.message}`);
  process.exit(1);
});
