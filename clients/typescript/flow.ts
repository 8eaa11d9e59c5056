// The whole flow through the gateway with a client generated from its OpenAPI document.
// tests/test_generated_clients.py puts the generated schema.d.ts beside this file, compiles
// it with `tsc --strict` and runs it: `node dist/flow.js <gateway URL>`. It prints what it
// saw as one JSON object; the test asserts on it.
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./schema.js";

// Node's own globals beyond the DOM library's (fetch, console, crypto): only what is used.
declare const process: { argv: string[] };

type Problem = components["schemas"]["Problem"];
type ValidationProblem = components["schemas"]["ValidationProblem"];

const POLL_DEADLINE_MS = 30_000;
const PASSWORD = "correct horse battery";

function check(condition: unknown, what: string): asserts condition {
  if (!condition) throw new Error(`flow failed: ${what}`);
}

function isValidationProblem(problem: Problem | ValidationProblem): problem is ValidationProblem {
  return Array.isArray(problem.errors);
}

function isoDay(daysAgo: number): string {
  return new Date(Date.now() - daysAgo * 86_400_000).toISOString().slice(0, 10);
}

function mondayOf(day: string): string {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() - ((date.getUTCDay() + 6) % 7));
  return date.toISOString().slice(0, 10);
}

// Analytics is computed from events: poll (bounded) until it has caught up.
async function eventually<T>(probe: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + POLL_DEADLINE_MS;
  let value = await probe();
  while (!done(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    value = await probe();
  }
  return value;
}

async function main(baseUrl: string): Promise<void> {
  const anonymous = createClient<paths>({ baseUrl });
  const email = `ts-${crypto.randomUUID()}@example.com`;

  const registered = await anonymous.POST("/auth/register", { body: { email, password: PASSWORD } });
  check(registered.data?.email === email, "register");

  const login = await anonymous.POST("/auth/login", { body: { email, password: PASSWORD } });
  check(login.data, "login");
  const signedIn = (token: string): Client<paths> =>
    createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });
  let api = signedIn(login.data.access_token);

  const goal = await api.POST("/goals", { body: { title: "Learn the cello" } });
  check(goal.data, "create goal");
  const goalId = goal.data.id;
  const today = isoDay(0);
  const yesterday = isoDay(1);

  const target = await api.POST("/weekly-targets", {
    body: { goal_id: goalId, week_start: mondayOf(today), target_minutes: 120 },
  });
  check(target.data?.target_minutes === 120, "create weekly target");

  for (const [date, minutes] of [[yesterday, 15], [today, 30]] as const) {
    const log = await api.POST("/daily-logs", { body: { goal_id: goalId, date, minutes } });
    check(log.data?.minutes === minutes, "create daily log");
  }
  const logs = await api.GET("/daily-logs", { params: { query: { goal_id: goalId } } });
  check(logs.data, "list daily logs");

  const dashboard = await eventually(
    async () => (await api.GET("/analytics/dashboard")).data,
    (data) => data?.total_minutes === 45,
  );
  check(dashboard, "dashboard");
  const streak = (await api.GET("/analytics/streak")).data;
  check(streak, "streak");
  const heatmap = (
    await api.GET("/analytics/heatmap", { params: { query: { from: yesterday, to: today } } })
  ).data;
  check(heatmap, "heatmap");

  const missing = await api.GET("/goals/{goal_id}", {
    params: { path: { goal_id: "0123456789abcdef01234567" } },
  });
  check(missing.error, "a missing goal is an error");
  const notFound: Problem = missing.error;

  const invalid = await api.POST("/goals", { body: { title: "" } });
  check(invalid.error && isValidationProblem(invalid.error), "an empty title is a validation problem");
  const validation: ValidationProblem = invalid.error;

  const refreshed = await anonymous.POST("/auth/refresh", {
    body: { refresh_token: login.data.refresh_token },
  });
  check(refreshed.data, "refresh");
  api = signedIn(refreshed.data.access_token);
  const loggedOut = await api.POST("/auth/logout", {
    body: { refresh_token: refreshed.data.refresh_token },
  });
  const afterLogout = await api.GET("/users/me");

  console.log(
    JSON.stringify({
      email: registered.data.email,
      goal_id: goalId,
      log_minutes: logs.data.items.map((log) => log.minutes),
      dashboard_total_minutes: dashboard.total_minutes,
      weekly_target_minutes: dashboard.weekly_target_minutes,
      current_streak: streak.current_streak,
      heatmap_minutes: heatmap.days.map((day) => day.minutes),
      not_found: { status: notFound.status, type: notFound.type },
      invalid: { status: validation.status, loc: validation.errors[0]?.loc },
      logout_status: loggedOut.response.status,
      after_logout: { status: afterLogout.response.status, problem: afterLogout.error?.status },
    }),
  );
}

const baseUrl = process.argv[2];
check(baseUrl, "usage: node dist/flow.js <gateway URL>");
await main(baseUrl);
