// bench/queue/bullmq.mjs — BullMQ's side of bench/run-queue.sh: the same no-op job as
// bench/queue_bench.c. Enqueues JOBS jobs with the specification's defaultJobOptions
// (src/jobs/queues.ts there) in addBulk chunks of 1000, then starts a Worker with CONCURRENCY
// and times until every job has completed. Redis at 127.0.0.1:REDIS_PORT.
//
// Prints: BENCH jobs=N concurrency=C enqueue_s=… process_s=… jobs_per_s=… enqueue_per_s=…
//         cpu_s=… (cpu_s: user + system time of this Node process while processing)
import { Queue, Worker } from 'bullmq';

const JOBS = Number(process.env.JOBS || 20000);
const CONCURRENCY = Number(process.env.CONCURRENCY || 1);
const connection = { host: '127.0.0.1', port: Number(process.env.REDIS_PORT || 6379) };
const name = `bench-noop-${process.pid}`;

// The specification's defaultJobOptions.
const defaultJobOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 5000 },
  removeOnComplete: { age: 86400, count: 1000 },
  removeOnFail: { age: 604800 },
};

const queue = new Queue(name, { connection, defaultJobOptions });
await queue.waitUntilReady();

const t0 = performance.now();
for (let i = 0; i < JOBS; i += 1000) {
  const n = Math.min(1000, JOBS - i);
  await queue.addBulk(Array.from({ length: n }, (_, k) => ({ name: 'noop', data: { i: i + k } })));
}
const t1 = performance.now();

let done = 0;
let finish;
const finished = new Promise((resolve) => { finish = resolve; });
const worker = new Worker(name, async () => {}, { connection, concurrency: CONCURRENCY, autorun: false });
worker.on('completed', () => { if (++done === JOBS) finish(); });
worker.on('error', (e) => { console.error(e); process.exit(1); });

const cpu0 = process.cpuUsage();
const t2 = performance.now();
worker.run();
await finished;
const t3 = performance.now();
const cpu = process.cpuUsage(cpu0);

const s = (ms) => (ms / 1000).toFixed(3);
console.log(`BENCH jobs=${JOBS} concurrency=${CONCURRENCY} enqueue_s=${s(t1 - t0)} ` +
  `process_s=${s(t3 - t2)} jobs_per_s=${Math.round(JOBS / ((t3 - t2) / 1000))} ` +
  `enqueue_per_s=${Math.round(JOBS / ((t1 - t0) / 1000))} ` +
  `cpu_s=${((cpu.user + cpu.system) / 1e6).toFixed(3)}`);

await worker.close();
await queue.obliterate({ force: true });
await queue.close();
