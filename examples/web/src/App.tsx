import { useEffect, useState } from 'react';
import { Provider, useQuery } from 'urql';
import { anonymous, openSession, type Session } from './api';
import { graphql } from './gql';
import { SignIn } from './SignIn';
import { Models } from './Models';
import { ModelPage } from './ModelPage';
import { AuditStream } from './AuditStream';

const Logout = graphql(`
  mutation Logout {
    logout
  }
`);

/** Revokes the token on the server: forgetting it in the page is not enough. */
async function signOut(session: Session) {
  await session.client.mutation(Logout, {}).toPromise();
}

const Me = graphql(`
  query Me {
    me { displayName organizations(first: 1) { nodes { id name viewerRole } } }
  }
`);

export function App() {
  const [token, setToken] = useState<string | null>(null);
  const [session, setSession] = useState<Session | null>(null);
  useEffect(() => {
    if (!token) return;
    const opened = openSession(token);
    setSession(opened);
    return opened.dispose;
  }, [token]);
  if (!token || session?.token !== token) {
    return (
      <Provider value={anonymous}>
        <SignIn onSignedIn={setToken} />
      </Provider>
    );
  }
  return (
    <Provider value={session.client}>
      <Workspace session={session} onSignOut={() => void signOut(session).then(() => setToken(null))} />
    </Provider>
  );
}

function Workspace({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const [{ data, error }] = useQuery({ query: Me });
  const [modelId, setModelId] = useState<string | null>(null);
  if (error) return <p role="alert">{error.message}</p>;
  const org = data?.me?.organizations.nodes[0];
  if (!data || !org) return <p>Loading…</p>;
  return (
    <main>
      <header>
        <strong>{org.name}</strong> · signed in as <span className="who">{data.me?.displayName}</span>{' '}
        <button onClick={onSignOut}>Sign out</button>
      </header>
      <div className="columns">
        <section>
          <Models organizationId={org.id} onOpen={setModelId} />
          {org.viewerRole === 'OWNER' || org.viewerRole === 'ADMIN' ? (
            <AuditStream ws={session.ws} organizationId={org.id} />
          ) : null}
        </section>
        <section>{modelId ? <ModelPage id={modelId} key={modelId} /> : <p>Open a model.</p>}</section>
      </div>
    </main>
  );
}
