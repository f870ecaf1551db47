/** Sovereign clouds from settings alone: China (21Vianet). See test/support/sovereign.ts. */
import { describeSovereignGateway } from '../support/sovereign';

describeSovereignGateway('China (21Vianet)', 'china', 'https://partner.outlook.cn/.default', {
  name: 'China',
  complianceScope: 'https://ps.compliance.protection.partner.outlook.cn/.default',
});
