/** Entry of the trainer's worker thread: exposes an in-process trainer over comlink. */
import { parentPort, workerData } from 'node:worker_threads';
import { expose } from 'comlink';
import { nodeEndpoint } from './comlink-node.js';
import { inProcessTrainer } from './trainer.js';

if (!parentPort) throw new Error('trainer/worker.js runs as a worker thread (see startTrainer)');
expose(inProcessTrainer(workerData as { tfThreads?: number }), nodeEndpoint(parentPort as never));
