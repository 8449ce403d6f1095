/** The V8 flags the controller runs with in production (Dockerfile's NODE_OPTIONS, `npm start`), for controllers a bench forks. */
export const CONTROLLER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64'];
