// The in-memory store against the shared store suite.
import { createMemoryStore } from './memory.js';
import { describeStore } from './store-suite.js';

describeStore('memory', (options) => createMemoryStore(options));
