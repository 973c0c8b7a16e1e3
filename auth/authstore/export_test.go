package authstore

// RevokedInMemory is how many revocations s holds in memory (tests).
func RevokedInMemory(s *Store) int {
	s.revMu.RLock()
	defer s.revMu.RUnlock()
	return len(s.revoked)
}
