package ldapstore

// A member whose clock is off its NTP server by more than the cluster's
// bound must not stamp changes with CSNs from that clock: a CSN an hour in
// the future wins every conflict for an hour and drags every member's CSN
// generator along. The cluster agent blocks local writes (Add, AddBatch,
// Modify, ModifyDN, Delete) while that lasts; replicated changes, which
// carry their own CSNs, are still applied.

// SetWriteBlock refuses local writes with unwillingToPerform (RFC 4511
// §4.1.9) and reason as the diagnostic message, until it is called with "".
func (s *Store) SetWriteBlock(reason string) {
	s.mu.Lock()
	s.writeBlock = reason
	s.mu.Unlock()
}

// WriteBlock returns why local writes are refused ("" when they are not).
func (s *Store) WriteBlock() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeBlock
}

// writable is checked first by every local write.
func (s *Store) writable() error {
	if r := s.WriteBlock(); r != "" {
		return Errorf(UnwillingToPerform, "%s", r)
	}
	return nil
}
