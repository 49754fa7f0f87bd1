# The README's two commands are `make demo` and `make test`.
GO ?= go
BIN ?= bin/socks

.PHONY: demo test soak build lint fuzz bench emulators clean docs snapshot

## demo: the whole flow on a throwaway local stack (no AWS)
demo:
	$(GO) run ./cmd/socks demo

## test: the full suite: installs what it needs, starts the emulators, -race
test:
	scripts/test

## soak: 2,000 connection slots (about 1,000 open at once, at the per-geek cap) with churn and steady publishing for 10 minutes
## on the local stack; prints a summary (the test command runs a 60 s one)
soak:
	SOCKS_SOAK_DURATION=10m SOCKS_SOAK_CONNECTIONS=2000 $(GO) test -count=1 -timeout 20m -run '^TestSoak$$' -v ./e2e/

## build: the binary in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/socks

## lint: gofmt, go vet and staticcheck only
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	staticcheck ./...

## fuzz: run each fuzz target for a short while
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseEnvelope -fuzztime 30s ./pubsub/
	$(GO) test -run '^$$' -fuzz FuzzAnEnvelopeAPublisherBuildsComesOffTheQueueAsSent -fuzztime 30s ./pubsub/
	$(GO) test -run '^$$' -fuzz FuzzSplitTopics -fuzztime 15s ./pubsub/
	$(GO) test -run '^$$' -fuzz FuzzHandleFrame -fuzztime 30s ./routes/
	$(GO) test -run '^$$' -fuzz FuzzConnectSubprotocols -fuzztime 15s ./routes/
	$(GO) test -run '^$$' -fuzz FuzzRenderNeverEmitsControlCharacters -fuzztime 30s ./commands/listen/
	$(GO) test -run '^$$' -fuzz FuzzSigV4AcceptsOnlyTheSignedRequest -fuzztime 30s ./gateway/
	$(GO) test -run '^$$' -fuzz FuzzSigV4RefusesForgedHeaders -fuzztime 15s ./gateway/
	$(GO) test -run '^$$' -fuzz FuzzManagementAPIAnswersInItsOwnWords -fuzztime 15s ./gateway/
	$(GO) test -run '^$$' -fuzz FuzzFrameTrackerAgreesWithAWholeStreamParse -fuzztime 15s ./gateway/
	$(GO) test -run '^$$' -fuzz FuzzRouteKeyIsTheBodysAction -fuzztime 15s ./gateway/
	$(GO) test -run '^$$' -fuzz FuzzAHandshakeReachesConnectOnlyIfItCanOpen -fuzztime 15s ./gateway/
	$(GO) test -run '^$$' -fuzz FuzzConnectQuery -fuzztime 15s ./routes/
	$(GO) test -run '^$$' -fuzz FuzzNamesKeepTheDocumentedRules -fuzztime 15s ./pubsub/
	$(GO) test -run '^$$' -fuzz FuzzTopicPatternsAllowOnlyWhatTheySay -fuzztime 15s ./pubsub/
	$(GO) test -run '^$$' -fuzz FuzzAChatterItemIsHonouredOnlyAsWritten -fuzztime 15s ./awsops/
	$(GO) test -run '^$$' -fuzz FuzzConnectionItemsReadBack -fuzztime 15s ./awsops/
	$(GO) test -run '^$$' -fuzz FuzzQueuePolicyReadBack -fuzztime 15s ./awsops/
	$(GO) test -run '^$$' -fuzz FuzzTrustDriftFlagsAnyoneButLambda -fuzztime 15s ./awsops/
	$(GO) test -run '^$$' -fuzz FuzzParsePolicyReadsEveryStatement -fuzztime 15s ./awsops/
	$(GO) test -run '^$$' -fuzz FuzzParseReport -fuzztime 15s ./store/
	$(GO) test -run '^$$' -fuzz FuzzConfigFileErrorsAreInWords -fuzztime 15s ./config/
	$(GO) test -run '^$$' -fuzz FuzzConnectURL -fuzztime 15s ./wsclient/
	$(GO) test -run '^$$' -fuzz FuzzChatterIDIsIssuedOnlyToTheLivePage -fuzztime 15s ./web/
	$(GO) test -run '^$$' -fuzz FuzzParseMessage -fuzztime 15s ./pubsub/
	$(GO) test -run '^$$' -fuzz FuzzAKeyIsReadAsWrittenOrRefused -fuzztime 15s ./pubsub/
	$(GO) test -run '^$$' -fuzz FuzzObjectKeysAreTheKeysEncodingJSONReads -fuzztime 15s ./pubsub/
	$(GO) test -run '^$$' -fuzz FuzzDispatch -fuzztime 15s ./lambdafn/
	$(GO) test -run '^$$' -fuzz '^FuzzSaveProfile$$' -fuzztime 15s ./config/
	$(GO) test -run '^$$' -fuzz FuzzSaveProfileKeepsBytes -fuzztime 15s ./config/
	$(GO) test -run '^$$' -fuzz FuzzSigV4AcceptsTheJSEmptyPostOnlyUnchanged -fuzztime 15s ./gateway/
	$(GO) test -run '^$$' -fuzz FuzzNestingAgreesWithTheLibrary -fuzztime 15s -fuzzminimizetime 1s ./config/
	$(GO) test -run '^$$' -fuzz FuzzWhatTheServerSaysStaysOnItsLine -fuzztime 15s ./commands/listen/
	$(GO) test -run '^$$' -fuzz FuzzADeadLetterReadsAsSQSHoldsIt -fuzztime 15s ./awsops/
	$(GO) test -run '^$$' -fuzz FuzzALogLineNeverHoldsAChatterID -fuzztime 15s ./internal/logsafe/
	$(GO) test -run '^$$' -fuzz FuzzAFaultSpecReadsBackOrIsRefusedInWords -fuzztime 15s ./faults/
	$(GO) test -run '^$$' -fuzz FuzzATypedLineIsACommandOrRefusedInWords -fuzztime 15s ./commands/listen/
	$(GO) test -run '^$$' -fuzz FuzzATypedLineIsReadAsTypedButNeverPastItsBound -fuzztime 15s ./commands/cmdutil/
	$(GO) test -run '^$$' -fuzz FuzzARedrivePolicyHasAQueueARNAndACountInRange -fuzztime 15s ./awsops/
	$(GO) test -run '^$$' -fuzz FuzzAnIDFileIsReadLineByLineOrRefusedInWords -fuzztime 15s ./commands/chatter/
	$(GO) test -run '^$$' -fuzz FuzzAChatterIDIsTakenTrimmedOrRefusedInSafeWords -fuzztime 15s ./commands/cmdutil/

## bench: socks against the raw WebSocket ceiling and the naive baselines; writes BENCHMARKS.md (ARGS=-short for a quick run)
bench:
	scripts/bench $(ARGS)

## docs: regenerate the Markdown command reference in docs/commands/ (commit it)
docs:
	rm -rf docs/commands
	$(GO) run ./cmd/socks docs --markdown docs/commands

## snapshot: every release archive, the Lambda zips and checksums in dist/, untagged
snapshot:
	scripts/goreleaser release --snapshot --clean

clean:
	rm -rf bin dist manpages
