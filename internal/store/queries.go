package store

// queries holds every static statement of one dialect. Statements whose
// shape depends on their arguments (IN lists, list filters) are built from
// these pieces by the methods that use them.
type queries struct {
	payoutCols       string // the columns scanPayout reads, in order
	attemptCols      string // the columns scanAttempt reads, in order
	insertPayout     string
	selectPayout     string // by id
	lockPayout       string // by id, locked until commit
	payoutByExtID    string
	updatePayout     string // state columns by id and previous version
	countByStatus    string
	oldestUnfinished string

	insertEvent string
	listEvents  string
	// eventsBarrier waits until every transaction that took a seq has
	// ended, so that a reader never passes a seq that commits later; ""
	// where writers are serialised anyway (SQLite).
	eventsBarrier string

	insertIdem       string
	selectIdem       string
	deleteIdemBefore string

	acquireLease string
	releaseLease string

	queuedPayouts     string
	confirmingPayouts string
	maxNonce          string
	insertNonce       string // does nothing when the nonce is taken
	insertAttempt     string // returns the attempt id
	inFlightAttempts  string
	inFlightPayouts   string
	payoutRequests    string
	nextObjectSeq     string
	moveQueued        string
	listAttempts      string
	paidBetween       string // asset and amount of a sender's payouts that paid in a block range
	attemptsAtNonces  string
	booksClosed       string // the block a wallet's books were last closed at
	openBooks         string // does nothing when the wallet's books are open
	closeBooks        string // moves the mark only from the block given

	createMigrations string
	migrationVersion string
	insertMigration  string
	lockMigrations   string // "" when the write transaction already excludes others
}
