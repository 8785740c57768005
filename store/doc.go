// Package store owns rtm's state: the routing table and the MAC table, kept
// in one mmap-backed segment file that exactly one server writes and any
// number of clients map read-only.
package store
