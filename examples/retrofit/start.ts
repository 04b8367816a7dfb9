/**
 * Runs the support bot: `LLM_BASE_URL=http://127.0.0.1:8080/v1 npx tsx examples/retrofit/start.ts`.
 * In Kubernetes the sidecar shares the pod, so the base URL is always localhost
 * (examples/kubernetes/support-bot.yaml).
 */
import { createSupportBot } from './support-bot.js';

const port = Number(process.env.PORT ?? 3000);
const baseURL = process.env.LLM_BASE_URL ?? 'http://127.0.0.1:8080/v1';

createSupportBot({ baseURL }).listen(port, () => {
  console.log(`support bot on http://127.0.0.1:${port}, LLM via ${baseURL}`);
});
