// An official TypeScript SDK client (v2, `@modelcontextprotocol/client`) in the session era
// that takes URL elicitations, signing in to a `credentials: per-user` upstream the way the
// spec lays out: its call fails with the SDK's `UrlElicitationRequiredError`, it prints the
// address for its user (the test plays the user's browser), waits for the server's
// `notifications/elicitation/complete` naming that elicitation, and calls again. One JSON
// line per step:
//   {"url": "...", "elicitationId": "..."}
//   {"completed": "..."}
//   {"text": "..."}
//
//   node ts_url_elicitation.cjs --url URL --token TOKEN --tool TOOL
//
// CommonJS so that NODE_PATH finds the pinned packages the test command installs.
'use strict';

const { Client, StreamableHTTPClientTransport, UrlElicitationRequiredError } = require('@modelcontextprotocol/client');

function option(name) {
    const at = process.argv.indexOf(`--${name}`);
    if (at < 0 || at + 1 >= process.argv.length) throw new Error(`--${name} is required`);
    return process.argv[at + 1];
}

async function main() {
    const client = new Client(
        { name: 'ts-url-elicitation', version: '1.0.0' },
        { capabilities: { elicitation: { url: {} } }, versionNegotiation: { mode: 'legacy' } }
    );
    const completed = new Map();
    client.setNotificationHandler('notifications/elicitation/complete', notification => {
        const id = notification.params.elicitationId;
        completed.get(id)?.(id);
    });
    const transport = new StreamableHTTPClientTransport(new URL(option('url')), {
        requestInit: { headers: { Authorization: `Bearer ${option('token')}` } }
    });
    await client.connect(transport);
    const call = () => client.callTool({ name: option('tool'), arguments: {} });
    let elicitation;
    try {
        await call();
        throw new Error('the call went through without a sign-in');
    } catch (error) {
        if (!(error instanceof UrlElicitationRequiredError)) throw error;
        elicitation = error.elicitations[0];
    }
    const done = new Promise(resolve => completed.set(elicitation.elicitationId, resolve));
    console.log(JSON.stringify({ url: elicitation.url, elicitationId: elicitation.elicitationId }));
    console.log(JSON.stringify({ completed: await done }));
    const result = await call();
    console.log(JSON.stringify({ text: result.content.map(block => block.text ?? '').join('\n') }));
    await client.close();
}

main().catch(error => {
    console.error(error);
    process.exit(1);
});
