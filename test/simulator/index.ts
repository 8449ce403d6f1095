export { FreeSwitchSimulator, parseVarBlock } from './FreeSwitchSimulator';
export type { OutboundCall, PhoneBehaviour, SeenByCaller, SeenInvite, SimulatorOptions } from './FreeSwitchSimulator';
