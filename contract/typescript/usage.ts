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
// A successful write always carries the task's new ETag: the header is declared, and required.
export const patchAnswersETag: Same<UpdateTask["responses"][200]["headers"]["ETag"], string> = true;

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

// Query parameters are typed as well: `priority` is a list of Priority values, `sort` a TaskSort.
type ListQuery = NonNullable<operations["listTasks"]["parameters"]["query"]>;
export const urgentFirstDue: ListQuery = { priority: ["high"], sort: "due_at", order: "asc", limit: 20 };

// Reading a page: items are Tasks, and `next_cursor` goes into the same query for the next page.
export function nextQuery(
  query: ListQuery,
  page: operations["listTasks"]["responses"][200]["content"]["application/json"],
): ListQuery | undefined {
  const last: Task | undefined = page.items[page.items.length - 1];
  if (last === undefined || page.next_cursor == null) return undefined;
  return { ...query, cursor: page.next_cursor };
}

// A problem document's `code` is a closed set, so a switch over it is checked.
export function shouldRetry(problem: Schemas["Problem"]): boolean {
  switch (problem.code) {
    case "overloaded":
    case "database_unavailable":
    case "rate_limited":
      return true;
    default:
      return false;
  }
}

// A project's body is no task's body (it has `name`, not `title`)...
// @ts-expect-error: ProjectInput lacks the required `title` of a TaskInput.
export const projectAsTask: CreateTaskBody = {} as ProjectBody;

// ...a priority is one of the three the document lists...
// @ts-expect-error: "urgent" is not a Priority.
export const urgent: Priority = "urgent";

// ...and tasks sort only by the fields the document names.
// @ts-expect-error: "name" is not a TaskSort.
export const byName: ListQuery = { sort: "name" };
