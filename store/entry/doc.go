// Package entry holds the values of rtm's tables and the one change that
// alters them, in the style of net/netip: small comparable value types
// that parse, validate, print in canonical form and allocate nothing on
// the hot paths. It knows nothing of memory maps, sockets or the kernel;
// every other package of rtm speaks it.
//
//   - MAC is a 48-bit Ethernet address; Route is one entry of the L3
//     table (prefix, gateway or none, device).
//   - Change is one change to one table, with one Op: the command
//     language parses a line into it, the server applies it (store, then
//     fan-out), the wire carries it, a client's subscribers (a watcher, a
//     kernel installer) receive it, and the kernel importer produces it.
//   - A route is valid when Route.Check passes: a masked prefix without a
//     zone, a gateway of the prefix's family (or none: connected), and a
//     device name Linux accepts and a line can carry (CheckIfName). A MAC
//     entry's address passes CheckHostIP: one a host can have. What an
//     earlier rtm stored is held to the older rules (Route.CheckStored,
//     CheckIP), as a store may still hold it.
//   - Errors: ErrExists, ErrNotFound and ErrReadOnly say why a change was
//     refused, wrapped in a *KeyError that names the key.
package entry
