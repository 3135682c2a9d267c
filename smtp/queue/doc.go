// Package queue is the gateway's durable mail queue: messages (envelope and
// content) and the per-recipient delivery state, kept in append-only log
// segments in one directory.
//
// Every write (a new message, a recipient status change, a removal) is a
// framed, checksummed record appended by a single writer goroutine. The
// writer batches the records of all concurrent callers, writes them with one
// write and makes them durable with one fdatasync (group commit); a call
// returns only once its record is on stable storage, so a message acknowledged
// with 250 survives a crash. On Open the segments are replayed in order to
// rebuild the in-memory index; a torn record at the tail of the last segment
// (a crash during a write that was never acknowledged) is cut off.
//
// A segment is deleted when no live message has a record in it. When a
// rotated segment holds little live data (a few long-deferred messages pinning
// a large file), those messages are copied forward into the head segment as
// snapshot records, so disk use follows the live data.
//
// The queue knows nothing about SMTP, routing or retry policy: it stores what
// the delivery code decides.
package queue
