// An official TypeScript SDK client (v2, `@modelcontextprotocol/client`): connects in the
// given era, lists the tools, calls one, answering sampling and elicitation requests with
// its name, and prints what it saw as one JSON line:
//   {"protocolVersion": "...", "tools": [...], "text": "..."}
//
//   node ts_client.cjs --era legacy|auto --name NAME --tool TOOL [--arg KEY=VALUE ...]
//        [--await-list-change SECONDS] (--url URL | --ws URL | --stdio COMMAND ARG...)
//
// With --await-list-change, after listing it prints {"listening": true} and waits, calling
// nothing, until the server says its tools changed (or SECONDS pass); the report then has
// `heard`, the list changes it got.
//
// The SDK has no WebSocket transport; `--ws` gives it the smallest one (one JSON-RPC message
// per text frame, subprotocol `mcp`), which only carries messages: the protocol is the SDK's.
//
// CommonJS so that NODE_PATH finds the pinned packages the test command installs.
'use strict';

const { Client, StreamableHTTPClientTransport } = require('@modelcontextprotocol/client');
const { StdioClientTransport } = require('@modelcontextprotocol/client/stdio');

function parse(argv) {
    const options = { args: {} };
    for (let i = 0; i < argv.length; i++) {
        const flag = argv[i];
        if (flag === '--stdio') {
            options.stdio = argv.slice(i + 1);
            break;
        }
        const value = argv[++i];
        if (flag === '--arg') {
            const [key, ...rest] = value.split('=');
            // A value that reads as JSON (a number, say) is passed as such.
            const raw = rest.join('=');
            try { options.args[key] = JSON.parse(raw); } catch { options.args[key] = raw; }
        } else {
            options[flag.replace(/^--/, '')] = value;
        }
    }
    return options;
}

class WebSocketTransport {
    constructor(url) {
        this.url = url;
    }

    start() {
        return new Promise((resolve, reject) => {
            this.socket = new WebSocket(this.url, 'mcp');
            this.socket.onopen = () => resolve();
            this.socket.onerror = event => {
                const error = new Error(`WebSocket error: ${event.message ?? 'connection failed'}`);
                reject(error);
                this.onerror?.(error);
            };
            this.socket.onclose = () => this.onclose?.();
            this.socket.onmessage = event => this.onmessage?.(JSON.parse(event.data));
        });
    }

    async send(message) {
        this.socket.send(JSON.stringify(message));
    }

    async close() {
        this.socket.close();
    }
}

async function main() {
    const options = parse(process.argv.slice(2));
    const client = new Client(
        { name: `ts-client-${options.name}`, version: '1.0.0' },
        {
            capabilities: { sampling: {}, elicitation: { form: {} } },
            versionNegotiation: { mode: options.era }
        }
    );
    client.setRequestHandler('sampling/createMessage', async () => ({
        role: 'assistant',
        model: 'ts-client',
        content: { type: 'text', text: `answer-${options.name}` }
    }));
    client.setRequestHandler('elicitation/create', async () => ({
        action: 'accept',
        content: { response: options.name, name: options.name }
    }));
    const transport = options.stdio
        ? new StdioClientTransport({ command: options.stdio[0], args: options.stdio.slice(1), stderr: 'ignore' })
        : options.ws
          ? new WebSocketTransport(options.ws)
          : new StreamableHTTPClientTransport(new URL(options.url));
    let heard = 0;
    let changed;
    const change = new Promise(resolve => { changed = resolve; });
    client.setNotificationHandler('notifications/tools/list_changed', () => {
        heard += 1;
        changed();
    });
    await client.connect(transport);
    const { tools } = await client.listTools();
    if (options['await-list-change']) {
        console.log(JSON.stringify({ listening: true }));
        const seconds = Number(options['await-list-change']);
        let timer;
        await Promise.race([change, new Promise(resolve => { timer = setTimeout(resolve, seconds * 1000); })]);
        clearTimeout(timer);
    }
    const result = await client.callTool({ name: options.tool, arguments: options.args });
    const text = result.content.map(block => block.text ?? '').join('\n');
    console.log(JSON.stringify({
        protocolVersion: client.getNegotiatedProtocolVersion(),
        tools: tools.map(tool => tool.name),
        isError: result.isError ?? false,
        text,
        heard
    }));
    await client.close();
}

main().catch(error => {
    console.error(error);
    process.exit(1);
});
