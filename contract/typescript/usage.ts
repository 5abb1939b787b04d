// How TypeScript code uses the types openapi-typescript generates from the Todo API's document.
// scripts/contract writes them to target/contract/ts/schema.d.ts and type-checks this file with
// `tsc --noEmit --strict` (tsconfig.json beside it); nothing here runs, a type error is the failure.
// The same types drive a typed fetch wrapper such as openapi-fetch.
import type { components, operations, paths } from "../../target/contract/ts/schema";

type Schemas = components["schemas"];
type Task = Schemas["Task"];
type TaskInput = Schemas["TaskInput"];
type TaskPatch = Schemas["TaskPatch"];
type Priority = Schemas["Priority"];

// What one operation takes and gives, by path and method...
type CreateTaskBody = paths["/api/v1/tasks"]["post"]["requestBody"]["content"]["application/json"];
type CreatedTask = paths["/api/v1/tasks"]["post"]["responses"][201]["content"]["application/json"];
// ...or by operationId, which names the same operation.
type CreateTask = operations["createTask"];
type UpdateTask = operations["updateTask"];
type ProjectBody = paths["/api/v1/projects"]["post"]["requestBody"]["content"]["application/json"];

// Type-level checks: each constant compiles only if its two types are the same.
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
export const createTakesTaskInput: Same<CreateTaskBody, TaskInput> = true;
export const createAnswersTask: Same<CreatedTask, Task> = true;
export const operationIdNamesTheRoute: Same<CreateTask, paths["/api/v1/tasks"]["post"]> = true;
export const patchTakesTaskPatch: Same<
  UpdateTask["requestBody"]["content"]["application/json"],
  TaskPatch
> = true;
export const priorities: Same<Priority, "low" | "medium" | "high"> = true;

// A request body, checked field by field: the enum, tags, an RFC 3339 due date.
export const newTask: CreateTaskBody = {
  title: "File the tax return",
  priority: "high",
  tags: ["admin"],
  due_at: "2030-04-15T17:00:00Z",
};

// A patch built from tasks as they were read: `priority` keeps its enum type from the read task,
// `null` clears a field, and `If-Match` is a header parameter of updateTask.
export function deferLike(read: Task, model: Task): {
  header: NonNullable<UpdateTask["parameters"]["header"]>;
  body: TaskPatch;
} {
  const priority: Priority = model.priority;
  return {
    header: { "If-Match": `"${read.id.replaceAll("-", "")}-${read.version}"` },
    body: { priority, tags: [...read.tags, "later"], due_at: null },
  };
}

// Reading a page: items are Tasks, and `next_cursor` is what the next listTasks call takes.
export function nextQuery(
  page: operations["listTasks"]["responses"][200]["content"]["application/json"],
): NonNullable<operations["listTasks"]["parameters"]["query"]> | undefined {
  const last: Task | undefined = page.items[page.items.length - 1];
  if (last === undefined || page.next_cursor == null) return undefined;
  return { limit: page.limit, cursor: page.next_cursor };
}

// A project's body is no task's body (it has `name`, not `title`)...
// @ts-expect-error: ProjectInput lacks the required `title` of a TaskInput.
export const projectAsTask: CreateTaskBody = {} as ProjectBody;

// ...and a priority is one of the three the document lists.
// @ts-expect-error: "urgent" is not a Priority.
export const urgent: Priority = "urgent";
