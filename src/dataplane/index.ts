// Public API of the dataplane: everything outside src/dataplane imports from
// here, never from native.ts.

export { Dataplane } from './dataplane';
export type { Capture, CaptureChunk, CaptureDirection, CaptureSpec, TraceLine, TraceRecord, TraceResult, TraceSpec } from './observe';
export { CAPTURE_DEFAULTS } from './observe';
export {
  ConflictError,
  DataplaneError,
  ERROR_CODES,
  LimitError,
  NativeFailure,
  NotFoundError,
  StateError,
  ValidationError,
  isErrorCode,
  mapNativeError,
} from './errors';
export type { ErrorCategory, ErrorCode } from './errors';
export { DEFAULT_OPTIONS, EVENT_TYPES } from './types';
export type {
  AgedEvent,
  CounterInfo,
  CounterSet,
  SwitchCounterSet,
  DataplaneEvent,
  DataplaneEventMap,
  DataplaneOptions,
  DataplaneSchema,
  DataplaneStats,
  EngineInfo,
  LinkWatchMode,
  EventType,
  FdbEntry,
  LearnedEvent,
  LinkEvent,
  MovedEvent,
  PipeEnd,
  PortInfo,
  PortLimitEvent,
  PortSpec,
  PortStatus,
  PortType,
  PortUpdate,
  ResolvedDataplaneOptions,
  StaticMacRef,
  StaticMacSpec,
  SwitchInfo,
  SwitchSpec,
  SwitchUpdate,
  TableFullEvent,
  VhostQueueStatus,
  VhostUserStatus,
  VlanMapping,
} from './types';
export { DEFAULT_PORT, DEFAULT_SWITCH } from './specs';
export { LIMITS, generateMac, isMulticastMac, parseMac } from './validate';
// Spec validators, for the control plane (config files and API bodies are
// checked with exactly the rules the dataplane applies).
export {
  PORT_UPDATE_KEYS,
  SWITCH_UPDATE_KEYS,
  switchesOfPort,
  validateOptions,
  validatePortSpec,
  validatePortUpdate,
  validateStaticMacSpec,
  validateSwitchSpec,
  validateSwitchUpdate,
} from './specs';
export type { NormalizedPort, NormalizedSwitch } from './specs';
export { maxMtuFor, validateName } from './validate';
export { VXLAN_OVERHEAD, inSubnet, ip6Groups, subnetEdge, uplinkProblem, validateCidr, validatePeerSpec, validateRemoteMacSpec, validateUplinkSpec, vtepAddressProblem } from './overlay';
export type { NeighborEntry, PeerSpec, RemoteMacSpec, UplinkInfo, UplinkSpec } from './overlay';
