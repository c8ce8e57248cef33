package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

// webhooks runs "keycard webhooks …": webhook endpoints and their
// deliveries on the server's data, safe while the server runs on it,
// through the auth.Service with the command line as the audit log's actor.
// The server's worker sends what is owed (docs/webhooks.md).
func (e *cmdEnv) webhooks(args []string) int {
	return e.subcommands("webhooks", args, map[string]func([]string) int{
		"add": e.webhooksAdd, "list": e.webhooksList, "remove": e.webhooksRemove,
		"deliveries": e.webhooksDeliveries, "replay": e.webhooksReplay,
	})
}

// webhookEndpointJSON is what add and list print of an endpoint; the
// secret only when it was just made.
func webhookEndpointJSON(ep *keycard.WebhookEndpoint) map[string]any {
	events := ep.Events
	if events == nil {
		events = []string{}
	}
	m := map[string]any{"id": ep.ID, "url": ep.URL, "events": events, "description": ep.Description,
		"created_at": ep.CreatedAt.UTC().Format(time.RFC3339)}
	if ep.Secret != "" {
		m["secret"] = ep.Secret
	}
	return m
}

func (e *cmdEnv) webhooksAdd(args []string) int {
	var (
		f      serverFlags
		events stringList
	)
	fs := e.serverFlagSet("webhooks add", &f)
	url := fs.String("url", "", "where deliveries are posted (required): https, or http on a loopback host")
	fs.Var(&events, "event", "an event type to send (repeatable, or comma-separated; default: all): "+joinTypes())
	description := fs.String("description", "", "a label for the endpoint")
	allowHTTP := fs.Bool("allow-http", false, "allow http on a host that is not loopback (a private network; bodies travel in clear)")
	if code, ok := e.parseLayered(fs, args, 0, "url"); !ok {
		return code
	}
	return e.onData(fs, &f, false, func(svc *auth.Service) int {
		ep, err := svc.CreateWebhook(e.ctx, auth.Operator(), auth.WebhookSpec{URL: *url, Events: events, Description: *description, AllowHTTP: *allowHTTP})
		if err != nil {
			return e.failErr(err)
		}
		e.printJSON(webhookEndpointJSON(ep))
		fmt.Fprintln(e.stderr, "keycard: the signing secret is shown only this once; give it to the receiver to verify webhook-signature")
		return exitOK
	})
}

// joinTypes lists the event types for a flag's help.
func joinTypes() string {
	s := ""
	for i, t := range keycard.WebhookEventTypes() {
		if i > 0 {
			s += ", "
		}
		s += t
	}
	return s
}

func (e *cmdEnv) webhooksList(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("webhooks list", &f)
	if code, ok := e.parseLayered(fs, args, 0); !ok {
		return code
	}
	return e.onData(fs, &f, false, func(svc *auth.Service) int {
		eps, err := svc.Webhooks(e.ctx)
		if err != nil {
			return e.failErr(err)
		}
		for _, ep := range eps {
			e.printJSON(webhookEndpointJSON(ep))
		}
		return exitOK
	})
}

func (e *cmdEnv) webhooksRemove(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("webhooks remove", &f)
	id := fs.String("id", "", "the endpoint's id (required); its deliveries go with it")
	if code, ok := e.parseLayered(fs, args, 0, "id"); !ok {
		return code
	}
	return e.onData(fs, &f, false, func(svc *auth.Service) int {
		if err := svc.DeleteWebhook(e.ctx, auth.Operator(), *id); err != nil {
			return e.failErr(err)
		}
		fmt.Fprintf(e.stdout, "removed webhook endpoint %s and its deliveries\n", *id)
		return exitOK
	})
}

// deliveryJSON is what deliveries and replay print of a delivery.
func deliveryJSON(d *keycard.WebhookDelivery) map[string]any {
	return map[string]any{
		"id": d.ID, "endpoint_id": d.EndpointID, "url": d.URL, "webhook_id": d.MessageID(), "event_type": d.EventType,
		"event_time": d.EventTime.UTC().Format(time.RFC3339), "state": d.State, "attempts": d.RoundAttempts(),
		"next_attempt_at": d.NextAttemptAt.UTC().Format(time.RFC3339), "last_error": d.LastError,
		"updated_at": d.UpdatedAt.UTC().Format(time.RFC3339),
	}
}

func (e *cmdEnv) webhooksDeliveries(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("webhooks deliveries", &f)
	endpoint := fs.String("endpoint", "", "only the deliveries to this endpoint id")
	state := fs.String("state", "", "only the deliveries in this state: pending, delivered or failed")
	limit := fs.Int("limit", 50, "at most this many, newest first (1 to "+strconv.Itoa(keycard.MaxPageSize)+")")
	if code, ok := e.parseLayered(fs, args, 0); !ok {
		return code
	}
	st := keycard.WebhookState(*state)
	if st != "" && !st.Valid() {
		fmt.Fprintln(e.stderr, "keycard webhooks deliveries: --state is pending, delivered or failed")
		return exitUsage
	}
	if *limit < 1 || *limit > keycard.MaxPageSize {
		fmt.Fprintf(e.stderr, "keycard webhooks deliveries: --limit is 1 to %d\n", keycard.MaxPageSize)
		return exitUsage
	}
	return e.onData(fs, &f, false, func(svc *auth.Service) int {
		ds, err := svc.WebhookDeliveries(e.ctx, keycard.WebhookFilter{EndpointID: *endpoint, State: st, Limit: *limit})
		if err != nil {
			return e.failErr(err)
		}
		for _, d := range ds {
			e.printJSON(deliveryJSON(d))
		}
		return exitOK
	})
}

func (e *cmdEnv) webhooksReplay(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("webhooks replay", &f)
	id := fs.Int64("id", 0, "the delivery's id (required; see webhooks deliveries): a delivered or failed one")
	if code, ok := e.parseLayered(fs, args, 0); !ok {
		return code
	}
	if *id <= 0 {
		fmt.Fprintln(e.stderr, "keycard webhooks replay: --id is required (a delivery id)")
		return exitUsage
	}
	return e.onData(fs, &f, false, func(svc *auth.Service) int {
		d, err := svc.ReplayWebhook(e.ctx, auth.Operator(), *id)
		if err != nil {
			return e.failErr(err)
		}
		e.printJSON(deliveryJSON(d))
		return exitOK
	})
}
