/*
 * no_agent.c - the runtime without the agent (cmake -DCOSCOPE_AGENT=OFF,
 * and the aarch64 cross build of tests/examples, which has no libunwind
 * or libdw for that target): the symbol through which the runtime pulls
 * the agent into a static link (runtime/agent_hooks.c), here without one.
 */
const char cs__agent_linked = 0;
