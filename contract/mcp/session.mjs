// The MCP door as an agent sees it, through the official TypeScript SDK (`@modelcontextprotocol/sdk`,
// pinned in contract/mcp/package.json and its lockfile).
//
//     node contract/mcp/session.mjs http://127.0.0.1:8000
//
// scripts/mcp copies this file next to the installed SDK (target/mcp-node) and runs it there, so
// that the SDK resolves from that node_modules. It registers a user over REST, makes API tokens,
// connects the SDK's Streamable HTTP client to `/mcp` with one, lists the tools, calls each with
// good input (its structured result compared with what REST answers; the SDK itself validates it
// against the tool's output schema) and with bad input (a tool error naming the field), reads a
// `task://` resource, and checks that a read-only token sees only read tools and cannot write.
// Each check prints one `session-ts: ` line; the first failure exits non-zero.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { isDeepStrictEqual as same } from "node:util";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { LATEST_PROTOCOL_VERSION } from "@modelcontextprotocol/sdk/types.js";

const BASE = (process.argv[2] ?? "").replace(/\/$/, "");
const READ_TOOLS = ["agenda", "find_tasks", "get_task", "reminder_history"];
const ALL_TOOLS = [
  ...READ_TOOLS, "add_project", "add_tasks", "complete_tasks", "delete_tasks", "list_projects", "move_tasks",
  "reopen_tasks", "update_tasks",
].sort();

function check(condition, what) {
  assert.ok(condition, what);
  console.log(`session-ts: ${what}`);
}

async function rest(method, path, token, body) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(BASE + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const raw = await response.text();
  return [response.status, raw ? JSON.parse(raw) : null];
}

const at = (hours) => new Date(Date.now() + hours * 3600_000).toISOString();

async function connect(token) {
  const transport = new StreamableHTTPClientTransport(new URL(`${BASE}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: "todo-contract", version: "1.0.0" });
  await client.connect(transport);
  return client;
}

async function good(client, name, args) {
  const result = await client.callTool({ name, arguments: args });
  assert.ok(!result.isError, `${name} failed: ${result.content?.[0]?.text}`);
  assert.ok(same(JSON.parse(result.content[0].text), result.structuredContent), `${name}: the text is the structured content`);
  return result.structuredContent;
}

async function bad(client, name, args, ...needles) {
  const result = await client.callTool({ name, arguments: args });
  const text = result.content?.[0]?.text ?? "";
  check(result.isError === true && needles.every((n) => text.includes(n)),
    `${name} with bad input is a tool error naming ${needles.join(", ")}`);
}

const [registered, account] = await rest("POST", "/api/v1/auth/register", undefined, {
  email: `agent-ts-${randomUUID().slice(0, 8)}@example.com`, password: "correct horse battery",
});
assert.equal(registered, 201, JSON.stringify(account));
const login = account.access_token;
async function token(scopes) {
  const [status, created] = await rest("POST", "/api/v1/tokens", login, { name: scopes.join(" "), scopes });
  assert.equal(status, 201, JSON.stringify(created));
  return created.token;
}
const full = await token(["tasks:read", "tasks:write", "projects:read", "projects:write"]);
const readOnly = await token(["tasks:read"]);
const restTask = async (id) => (await rest("GET", `/api/v1/tasks/${id}`, login))[1];
const total = async () => (await rest("GET", "/api/v1/tasks?limit=1", login))[1].total;

const client = await connect(full);
check(client.getServerVersion()?.name === "todo", `connected with a token over Streamable HTTP (SDK speaks ${LATEST_PROTOCOL_VERSION})`);
const { tools } = await client.listTools();
check(JSON.stringify(tools.map((t) => t.name).sort()) === JSON.stringify(ALL_TOOLS), `${tools.length} tools listed`);
check(tools.every((t) => t.outputSchema && t.description), "every tool has an output schema and a description");

const home = await good(client, "add_project", { name: "Home" });
check(same((await rest("GET", `/api/v1/projects/${home.id}`, login))[1], home), "add_project: the project REST shows");
await bad(client, "add_project", { name: "" }, "name");
const projects = await good(client, "list_projects", {});
check(same(projects.items, (await rest("GET", "/api/v1/projects", login))[1].items), "list_projects: as REST lists them");
await bad(client, "list_projects", { archived: "yes" }, "archived");

const added = await good(client, "add_tasks", { tasks: [
  { title: "Pay the bill", due_at: at(-30), priority: "high", tags: ["home"] },
  { title: "Plan the garden", due_at: at(72), project_id: home.id },
  { title: "Renew passport", due_at: at(24 * 20), reminder_at: at(24 * 19) },
] });
const ids = added.results.map((r) => r.task.id);
const shown = await Promise.all(ids.map(restTask));
check(same(added.results.map((r) => r.task), shown), "add_tasks: each task as REST shows it");
const before = await total();
await bad(client, "add_tasks", { tasks: [{ title: "fine" }, { title: "" }] }, "tasks[1].title");
check(await total() === before, "add_tasks: a bad item applies nothing");

const found = await good(client, "find_tasks", { tags: ["home"], sort: "due_at" });
const restFound = (await rest("GET", "/api/v1/tasks?tags=home&sort=due_at", login))[1];
check(JSON.stringify(found.items.map((t) => t.id)) === JSON.stringify(restFound.items.map((t) => t.id)) && found.total === 1,
  "find_tasks: what REST finds");
await bad(client, "find_tasks", { limit: 0 }, "limit");

const got = await good(client, "get_task", { id: ids[0] });
check(same(got.task, await restTask(ids[0])), "get_task: the task REST shows");
await bad(client, "get_task", { id: randomUUID() }, "not_found");

await good(client, "update_tasks", { tasks: [{ id: ids[1], changes: { title: "Plan the vegetable garden" } }] });
check((await restTask(ids[1])).title === "Plan the vegetable garden", "update_tasks: REST shows the change");
await bad(client, "update_tasks", { tasks: [{ id: ids[1], changes: { priority: "urgent" } }] }, "tasks[0].changes.priority");

await good(client, "complete_tasks", { tasks: [{ id: ids[1] }] });
check((await restTask(ids[1])).completed === true, "complete_tasks: REST shows it done");
await bad(client, "complete_tasks", { tasks: [{ id: randomUUID() }] }, "not_found", "tasks[0]");
await good(client, "reopen_tasks", { tasks: [{ id: ids[1] }] });
check((await restTask(ids[1])).completed === false, "reopen_tasks: REST shows it open");
await bad(client, "reopen_tasks", { tasks: [{ id: "nope" }] }, "tasks[0].id");

await good(client, "move_tasks", { tasks: [{ id: ids[1], project_id: null }] });
check((await restTask(ids[1])).project_id === null, "move_tasks: REST shows it in the inbox");
await bad(client, "move_tasks", { tasks: [{ id: ids[1] }] }, "tasks[0].project_id");

const spare = (await good(client, "add_tasks", { tasks: [{ title: "Spare" }] })).results[0];
await good(client, "update_tasks", { tasks: [{ id: spare.task.id, changes: { title: "Spare 2" } }] });
await bad(client, "delete_tasks", { tasks: [{ id: spare.task.id, etag: spare.etag }] }, "precondition_failed");
await good(client, "delete_tasks", { tasks: [{ id: spare.task.id }] });
const trash = (await rest("GET", "/api/v1/tasks/trash", login))[1];
check((await rest("GET", `/api/v1/tasks/${spare.task.id}`, login))[0] === 404
  && trash.items.some((t) => t.id === spare.task.id), "delete_tasks: REST answers 404 and the trash lists it");

const agenda = await good(client, "agenda", {});
check(agenda.overdue.items.map((t) => t.id).join() === ids[0] && agenda.next_7_days.items.map((t) => t.id).join() === ids[1],
  "agenda: one overdue, one in the next 7 days");
await bad(client, "agenda", { day: "monday" }, "day");

const history = await good(client, "reminder_history", { task_id: ids[2] });
const restHistory = (await rest("GET", `/api/v1/tasks/${ids[2]}/reminders`, login))[1];
check(same(history.items, restHistory.items), "reminder_history: as REST shows it");
await bad(client, "reminder_history", { task_id: randomUUID() }, "not_found");

const read = await client.readResource({ uri: `task://${ids[0]}` });
const resource = JSON.parse(read.contents[0].text);
const [, restRead] = await rest("GET", `/api/v1/tasks/${ids[0]}`, login);
check(same(resource.task, restRead) && resource.etag === got.etag, "resources/read task://{id}: the task and etag REST and get_task show");
await client.close();

const reader = await connect(readOnly);
const readable = (await reader.listTools()).tools.map((t) => t.name).sort();
check(JSON.stringify(readable) === JSON.stringify(READ_TOOLS), "a read-only token sees only the read tools");
const beforeSneak = await total();
await bad(reader, "add_tasks", { tasks: [{ title: "sneaky" }] }, "tasks:write");
check(await total() === beforeSneak, "a read-only token cannot write");
await reader.close();
