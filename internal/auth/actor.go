package auth

import (
	"time"

	"github.com/keycard-auth/keycard"
)

// Agent describes where a request came from — the User-Agent header and
// the network address of the program that sent it — for sessions and the
// audit log. It is not an OAuth client (that is keycard.Client).
type Agent struct {
	UserAgent string
	Addr      string
}

// maxUserAgent bounds what is stored of a User-Agent header.
const maxUserAgent = 512

func (a Agent) clean() Agent {
	if len(a.UserAgent) > maxUserAgent {
		a.UserAgent = a.UserAgent[:maxUserAgent]
	}
	return a
}

// ActorKind says who asks for a state change.
type ActorKind int

// The kinds of Actor.
const (
	// ActorUser is a signed-in user acting on their own account.
	ActorUser ActorKind = iota + 1
	// ActorAdmin is a signed-in user with RoleAdmin acting on the
	// server (the admin API and console). The caller checks the role.
	ActorAdmin
	// ActorOperator is whoever runs the keycard command line on the
	// server's own data: they hold the database, so they need no token.
	ActorOperator
	// ActorSystem is the server itself (maintenance, policies).
	ActorSystem
	// ActorClient is a registered OAuth client (keycard.Client) acting
	// on tokens it holds (RFC 7009 revocation).
	ActorClient
)

// Audit actors of the kinds that are not users.
const (
	operatorAuditID = "cli"
	systemAuditID   = "system"
)

// Actor is who asks for a state change and from where. Every operation
// of the Service that changes state and is not a user's own sign-in takes
// one: it is the actor of the audit event, and the self-protection checks
// of the admin operations (an admin cannot disable themselves) look at it.
// Make one with AdminActor, UserActor, Operator or System.
type Actor struct {
	Kind ActorKind
	// ID is the acting user's id for ActorUser and ActorAdmin, the
	// client's for ActorClient; empty for the others.
	ID string
	// Agent is where the request came from; empty for the command line
	// and the system.
	Agent Agent
	// AuthTime and ACR are when and how an admin signed in (the token
	// they act with), for the step-up of destructive actions; zero for
	// the others.
	AuthTime time.Time
	ACR      string
}

// AdminActor is p acting as an admin from agent a. The caller has checked
// that p has RoleAdmin.
func AdminActor(p *Principal, a Agent) Actor {
	return Actor{Kind: ActorAdmin, ID: p.User.ID, Agent: a.clean(), AuthTime: p.Claims.AuthTime.Time, ACR: p.Claims.ACR}
}

// UserActor is the user with this id acting on their own account from
// agent a.
func UserActor(userID string, a Agent) Actor {
	return Actor{Kind: ActorUser, ID: userID, Agent: a.clean()}
}

// ClientActor is the OAuth client c acting from agent a.
func ClientActor(c *keycard.Client, a Agent) Actor {
	return Actor{Kind: ActorClient, ID: c.ID, Agent: a.clean()}
}

// anonymous is an actor not known yet (a failed sign-in) at agent a.
func anonymous(a Agent) Actor { return Actor{Agent: a.clean()} }

// Operator is the command line's operator.
func Operator() Actor { return Actor{Kind: ActorOperator} }

// System is the server itself.
func System() Actor { return Actor{Kind: ActorSystem} }

// auditID is the actor's id in the audit log: the user's or client's id,
// "cli" for the operator, "system" for the server, "" when unknown.
func (a Actor) auditID() string {
	switch a.Kind {
	case ActorOperator:
		return operatorAuditID
	case ActorSystem:
		return systemAuditID
	}
	return a.ID
}

// is reports whether the actor is the user with this id.
func (a Actor) is(userID string) bool {
	return (a.Kind == ActorUser || a.Kind == ActorAdmin) && a.ID == userID
}
