package txm

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the sender's Prometheus metrics.
type Metrics struct {
	attempts       *prometheus.CounterVec
	broadcasts     *prometheus.CounterVec
	transitions    *prometheus.CounterVec
	acceptToFinal  *prometheus.HistogramVec
	acceptToSend   *prometheus.HistogramVec
	inFlight       *prometheus.GaugeVec
	roundDuration  *prometheus.HistogramVec
	lastHead       *prometheus.GaugeVec
	sendLoopErrors *prometheus.CounterVec
	replacements   *prometheus.CounterVec
	holds          *prometheus.CounterVec
	handoffs       *prometheus.CounterVec
	halted         *prometheus.GaugeVec
	balance        *prometheus.GaugeVec
	pausesActive   *prometheus.GaugeVec
	offlinePlans   *prometheus.CounterVec
	rotations      *prometheus.CounterVec
}

// NewMetrics registers the sender's metrics on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_attempts_total", Help: "Signed transaction attempts stored, by chain.",
		}, []string{"chain"}),
		broadcasts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_broadcasts_total", Help: "Transactions broadcast, by chain and node answer (ok or an error kind).",
		}, []string{"chain", "outcome"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_payout_transitions_total", Help: "Payout status changes made by the sender, by chain and new status.",
		}, []string{"chain", "status"}),
		acceptToFinal: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_payout_accept_to_final_seconds", Help: "Time from a payout's acceptance to its terminal state, by chain and status.",
			Buckets: prometheus.ExponentialBuckets(0.25, 2, 14),
		}, []string{"chain", "status"}),
		acceptToSend: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_payout_accept_to_broadcast_seconds", Help: "Time from a payout's acceptance to the first broadcast of its transaction, by chain.",
			Buckets: []float64{.001, .002, .003, .005, .0075, .01, .015, .02, .03, .05, .075, .1, .15, .2, .3, .5, .75, 1, 2, 5, 10, 30},
		}, []string{"chain"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_sender_in_flight", Help: "Payouts signed and broadcast but not yet mined, by chain and sender.",
		}, []string{"chain", "sender"}),
		roundDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_sender_round_seconds", Help: "Duration of the sender's rounds, by step (send, track).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"chain", "step"}),
		lastHead: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_chain_head", Help: "The latest block number the sender has seen, by chain.",
		}, []string{"chain"}),
		sendLoopErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_sender_errors_total", Help: "Errors in the sender loop, by chain and step.",
		}, []string{"chain", "step"}),
		replacements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_replacements_total", Help: "Attempts signed at a nonce already in use, by chain and kind (fee_bump, cancel).",
		}, []string{"chain", "kind"}),
		handoffs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_payout_handoffs_total", Help: "Queued payouts a hot wallet could not cover, handed to another hot wallet of the chain, by chain.",
		}, []string{"chain"}),
		holds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_payout_holds_total", Help: "Payouts held back (queued waiting, or stuck), by chain and reason.",
		}, []string{"chain", "reason"}),
		halted: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_sender_halted", Help: "1 while a sender sends nothing new because a transaction it did not send used its nonce.",
		}, []string{"chain", "sender"}),
		balance: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_wallet_balance", Help: "Hot wallet balance in base units as last read by its sender (approximate: a float), by chain, sender and asset.",
		}, []string{"chain", "sender", "asset"}),
		pausesActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_sender_pauses_active", Help: "Emergency pauses in force that can stop payouts of this sender (global, its chain, an asset on it, or its wallet), by chain and sender.",
		}, []string{"chain", "sender"}),
		offlinePlans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_offline_plans_total", Help: "Offline plans acted on by the wallet's sender, by chain and step (opened, empty, submitted, voided, void_refused).",
		}, []string{"chain", "step"}),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_rotation_steps_total", Help: "Steps of wallet rotations done by the retired wallet's sender, by chain and step (handed_over: payouts moved to the new wallet; sweeps_started, completed).",
		}, []string{"chain", "step"}),
	}
	if reg != nil {
		reg.MustRegister(m.attempts, m.broadcasts, m.transitions, m.acceptToFinal, m.acceptToSend, m.inFlight,
			m.roundDuration, m.lastHead, m.sendLoopErrors, m.replacements, m.holds, m.handoffs, m.halted, m.balance,
			m.pausesActive, m.offlinePlans, m.rotations)
	}
	return m
}
